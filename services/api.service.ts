/**
 * The REST gateway (moleculer-web). Every HTTP concern lives here: authentication, rate limiting,
 * status codes, the error body, audit of mutating calls. Services never see req/res; who may call
 * an action is the action's own `access`, checked where it runs (src/platform/trust.ts).
 */
import type { Server as TlsServer } from "node:tls";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { appConfig } from "../src/platform/app-config";
import { onCertificateReload } from "../src/platform/certificate-reload";
import type { AppConfig } from "../src/platform/config";
import { reportServerError } from "../src/platform/error-tracking";
import { ApiError, forbidden, unauthorized } from "../src/platform/errors";
import { quotaHeaders, toErrorResponse } from "../src/gateway/error-response";
import { auditEntry, clientIp, isProbe, keepProtoKey, pathOf, type GatewayMeta, type Req, type Res } from "../src/gateway/http-request";
import { jsonBodyParser } from "../src/gateway/body-parser";
import { gatewayCors, setResponseHeaders } from "../src/gateway/http-hygiene";
import { localGatewayUrl } from "../src/gateway/local-gateway";
import { checkReadiness } from "../src/gateway/readiness";
import { REST_ROUTES } from "../src/gateway/routes";
import { PANEL_ASSETS } from "../src/gateway/panel";
import { MILLISECOND_HISTOGRAMS } from "../src/platform/metrics/definitions";
import { watchHttpRequest } from "../src/platform/metrics/http-requests";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type MetricFamilySnapshot } from "../src/platform/metrics/prometheus";
import { gatewayHttpsOptions, gatewaySecureContext } from "../src/platform/tls";
import { MemoryRateLimiter, type RateLimiter } from "../src/gateway/rate-limit/rate-limiter";
import { RedisRateLimiter } from "../src/gateway/rate-limit/redis-rate-limiter";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { bearerToken, mintToken, sameSecret, TokenError } from "../src/platform/tokens";
import { tokenVerifierOf } from "../src/platform/verify-token";
import { EVENTS, type Principal } from "../src/types";

interface ApiThis extends Service<Record<string, any>> {
	config: AppConfig;
	limiter: RateLimiter;
	/** An HTTPS server (`tls.Server`) when TLS_CERT_FILE is set. */
	server: import("node:http").Server;
	/** Ends the SIGHUP reload of the certificate (TLS_CERT_FILE). */
	stopCertificateReload?: () => void;
	audit(req: Req, status: number, result: unknown): void;
	rateLimit(key: string, res: Res): Promise<void>;
	sendErrorResponse(req: Req, res: Res, err: Error): void;
}

const ApiService: TypedServiceSchema<ApiThis> & { merged(this: ApiThis, schema: ServiceSchema): void } = {
	name: "api",
	mixins: [ApiGateway],

	/** moleculer-web makes its server in its own `created`, before ours: HTTPS must be in the settings by then. */
	merged(this: ApiThis, schema: ServiceSchema) {
		const https = gatewayHttpsOptions(appConfig(this.broker).tls);
		if (!https) return;
		// A fresh object: several brokers in one process (tests, benchmarks) share this schema. Secure:
		// Moleculer sends a service's settings to every node, and these hold the private key.
		const $secureSettings = [...(schema.settings?.$secureSettings ?? []), "https"];
		schema.settings = { ...schema.settings, https, $secureSettings } as ServiceSchema["settings"];
	},

	settings: {
		port: 8080,
		ip: "0.0.0.0",
		routes: [],
		// The web panel at `GET /`: what no route takes is served from its build (src/gateway/panel.ts).
		assets: PANEL_ASSETS,
		log4XXResponses: false,
		logRequestParams: null,
		logResponseData: null,
		// One structured access log line per request instead (see `watchHttpRequest`).
		logRequest: null,
		logResponse: null
	},

	actions: {
		health: {
			access: "public",
			handler(this: ApiThis) {
				return { status: "ok", node_id: this.broker.nodeID, uptime_s: Math.round(process.uptime()) };
			}
		},
		ready: {
			access: "public",
			async handler(this: ApiThis, ctx: Context<unknown, GatewayMeta>) {
				const readiness = await checkReadiness(this.broker, this.config, this.limiter);
				if (!readiness.ready) ctx.meta.$statusCode = 503;
				return { status: readiness.ready ? "ready" : "not_ready", ...readiness };
			}
		},
		// The Prometheus scrape, aliased at `GET /metrics` only when METRICS_ENABLED, behind
		// METRICS_TOKEN when that is set (`authenticateScrape`); without it, keep it off the public network.
		// This node's registry only: scrape every gateway node (see services/metrics.service.ts).
		metrics: {
			// The gateway's own route only: over the transporter it would be a way round METRICS_TOKEN.
			access: "local",
			handler(this: ApiThis, ctx: Context<unknown, GatewayMeta>) {
				ctx.meta.$responseType = PROMETHEUS_CONTENT_TYPE;
				const families = this.broker.metrics.list() as unknown as MetricFamilySnapshot[];
				return renderPrometheus(families, { namespace: this.broker.namespace, node_id: this.broker.nodeID }, { millisecondsAsSeconds: MILLISECOND_HISTOGRAMS });
			}
		}
	},

	methods: {
		/** `GET /metrics`: with METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` (no JWT) may scrape. */
		authenticateScrape(this: ApiThis, _ctx: Context<unknown, GatewayMeta>, _route: unknown, req: Req) {
			const expected = this.config.secrets.metricsToken;
			if (!expected) return null;
			const presented = bearerToken(req.headers.authorization);
			if (!presented || !sameSecret(presented, expected)) throw unauthorized("A valid metrics token is required");
			return null;
		},

		async authenticate(this: ApiThis, ctx: Context<unknown, GatewayMeta>, _route: unknown, req: Req, res: Res) {
			const rule = (req.$restRoute = req.$alias?.restRoute);
			ctx.meta.clientIp = clientIp(req);
			const idempotencyKey = req.headers["idempotency-key"];
			if (typeof idempotencyKey === "string" && idempotencyKey) ctx.meta.idempotencyKey = idempotencyKey.slice(0, 200);

			let user: Principal | null = null;
			let tokenError: string | undefined;
			const token = bearerToken(req.headers.authorization);
			if (token) {
				try {
					user = (await tokenVerifierOf(this.broker).verify(token)).principal;
				} catch (err) {
					tokenError = err instanceof TokenError ? err.message : "Invalid token";
				}
			}

			// Anonymous requests were counted by address before routing; a token's are counted by its subject.
			if (user || !req.$counted) await this.rateLimit(user ? `sub:${user.sub}` : `ip:${ctx.meta.clientIp}`, res);

			if (tokenError) throw unauthorized(tokenError);
			const apiKey = req.headers["x-api-key"];
			if (!user && rule?.apiKey && typeof apiKey === "string") {
				if (!sameSecret(apiKey, this.config.secrets.apiKey)) throw unauthorized("Invalid API key");
				ctx.meta.apiKey = apiKey;
			}
			// The credential itself travels with the call: the service that acts verifies it (src/platform/trust.ts).
			if (user) ctx.meta.token = token;
			return user;
		},

		/** Who may call what is each action's own `access` (checked where it runs); here only that the route is ours. */
		authorize(this: ApiThis, _ctx: Context<unknown, GatewayMeta>, _route: unknown, req: Req) {
			if (!req.$restRoute) throw forbidden();
		},

		async rateLimit(this: ApiThis, key: string, res: Res) {
			const decision = await this.limiter.hit(key);
			res.setHeader("X-RateLimit-Limit", String(decision.limit));
			res.setHeader("X-RateLimit-Remaining", String(decision.remaining));
			res.setHeader("X-RateLimit-Reset", String(Math.ceil(decision.resetAt / 1000)));
			if (!decision.allowed) {
				res.setHeader("Retry-After", String(Math.max(1, Math.ceil((decision.resetAt - Date.now()) / 1000))));
				throw new ApiError("RATE_LIMITED", "Too many requests", { limit: decision.limit, window_s: 60 });
			}
		},

		/** Mutating calls of our routes, and anything an authenticated caller tried; never an anonymous probe of unknown paths. */
		audit(this: ApiThis, req: Req, status: number, result: unknown) {
			const entry = auditEntry(req, status, result);
			if (entry) this.broker.emit(EVENTS.audit, entry);
		},

		sendErrorResponse(this: ApiThis, req: Req, res: Res, err: Error) {
			const { status, body } = toErrorResponse(err as never);
			if (status >= 500) {
				const path = pathOf(req);
				this.logger.error({ err, path, request_id: req.$ctx?.requestID }, "request failed");
				// Error tracking (a no-op without SENTRY_DSN; each error is reported once).
				reportServerError(this.config, err, { request_id: req.$ctx?.requestID, method: req.method, path, status, node_id: this.broker.nodeID });
			}
			this.audit(req, status, null);
			if (res.headersSent) return void res.end();
			res.statusCode = status;
			if (body.error.code === "QUOTA_EXCEEDED") for (const [name, value] of Object.entries(quotaHeaders(body.error.details))) res.setHeader(name, value);
			res.setHeader("Content-Type", "application/json; charset=utf-8");
			if (req.$ctx?.requestID) res.setHeader("X-Request-ID", req.$ctx.requestID);
			res.end(JSON.stringify(body));
		}
	},

	created(this: ApiThis) {
		const config = (this.config = appConfig(this.broker));
		this.settings.port = config.serverPort;
		// No origin allowed (production without CORS_ORIGINS): no `cors` setting, so no CORS header at all.
		const cors = gatewayCors(config.corsOrigins);
		if (cors) this.settings.cors = cors;
		this.settings.onError = function (this: ApiThis, req: Req, res: Res, err: Error) {
			this.sendErrorResponse(req, res, err);
		};
		// HTTP metrics, the access log and the headers of every answer. moleculer-web calls
		// `rootCallOptions` for every request before routing, so 404s and refused calls get them too.
		const httpMetrics = this.broker.isMetricsEnabled() ? this.broker.metrics : null;
		this.settings.rootCallOptions = ((_options: unknown, req: Req, res: Res) => {
			setResponseHeaders(res);
			watchHttpRequest(httpMetrics, this.logger, req, res);
		}) as never;
		const self = this;
		// Before any route's own work (every path falls under one of ours, unknown ones too): an anonymous
		// request is counted by its address, so probing unknown routes costs the prober, not the audit log.
		this.settings.use = [
			(req: Req, res: Res, next: (err?: unknown) => void) => {
				// Liveness and readiness probes are not counted: a load balancer's anonymous traffic must not make the node look dead.
				if (req.headers.authorization || isProbe(req)) return next();
				req.$counted = true;
				self.rateLimit(`ip:${clientIp(req)}`, res).then(() => next(), next);
			}
		];
		// moleculer-web has already built its (empty) route list in its own `created`: add ours.
		const routes = [
			{
				name: "ops",
				path: "/",
				mappingPolicy: "restrict",
				bodyParsers: false,
				aliases: { "GET health": "api.health", "GET ready": "api.ready" }
			},
			...(config.metricsEnabled
				? [{ name: "metrics", path: "/", mappingPolicy: "restrict", bodyParsers: false, authentication: "authenticateScrape", aliases: { "GET metrics": "api.metrics" } }]
				: []),
			{
				name: "v1",
				path: "/api/v1",
				mappingPolicy: "restrict",
				authentication: true,
				authorization: true,
				bodyParsers: false,
				use: [jsonBodyParser(ApiGateway, config.bodyLimitBytes)],
				aliases: Object.fromEntries(REST_ROUTES.map(r => [`${r.method} ${r.path}`, { action: r.action, restRoute: r }])),
				onBeforeCall(_ctx: Context<unknown, GatewayMeta>, _route: unknown, req: Req) {
					// An empty body must still give `params = {}`, and path params win over body fields.
					req.$params = req.$params ?? {};
					keepProtoKey(req.$params, req.body);
				},
				onAfterCall(ctx: Context<unknown, GatewayMeta>, _route: unknown, req: Req, res: Res, data: unknown) {
					const rule = req.$restRoute;
					if (rule?.status && !ctx.meta.$statusCode) {
						ctx.meta.$statusCode = rule.status;
						if (rule.location && data && typeof data === "object") {
							ctx.meta.$location = rule.location(data as Record<string, string>);
							// moleculer-web sends `Location` only with 201 and 3xx; a 202 names its run too.
							if (rule.status === 202) res.setHeader("Location", ctx.meta.$location);
						}
					}
					// An admitted submission's quota figures (src/runtime/quotas.ts).
					for (const [name, value] of Object.entries(quotaHeaders(ctx.meta.quota))) res.setHeader(name, value);
					self.audit(req, ctx.meta.$statusCode ?? 200, data);
					return data;
				}
			}
		];
		for (const route of routes) (this as unknown as { addRoute(r: object): void }).addRoute(route);
		if (config.redisUrl)
			this.limiter = new RedisRateLimiter(config.redisUrl, config.rateLimitPerMinute, `${config.broker.namespace}-ratelimit`, err =>
				this.logger.warn({ err: err.message }, "Redis unreachable: rate limiting per node")
			);
		else this.limiter = new MemoryRateLimiter(config.rateLimitPerMinute);
	},

	started(this: ApiThis) {
		// SIGHUP: new handshakes get the certificate on disk then; open connections keep theirs.
		const server = this.server as unknown as TlsServer;
		if (this.config.tls.certFile)
			this.stopCertificateReload = onCertificateReload(this.config, "TLS_CERT_FILE", () => server.setSecureContext(gatewaySecureContext(this.config.tls)!));
		if (this.config.secretsGenerated) {
			const token = mintToken(this.config.secrets.jwtSecret, { sub: "dev-admin", roles: ["admin"], expiresInSec: 24 * 3600 }, this.config.jwt);
			const url = localGatewayUrl(this.broker, this.config);
			this.logger.warn(
				`Development mode: gateway on ${url}; JWT_SECRET/API_KEY generated in ${this.config.dataDir}/.secrets.json. Admin token (24 h): ${token} · ` +
					`Panel: ${url}/#token=${token}`
			);
		}
	},

	async stopped(this: ApiThis) {
		this.stopCertificateReload?.();
		await this.limiter.close();
	}
};

export default ApiService;
