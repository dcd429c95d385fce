/**
 * Trust between nodes. A node that holds JWT_SECRET is trusted; any other process on the
 * transporter is not, whatever it says about itself.
 *
 * - Principals: an action never believes `meta.user` from the wire. The principal is what this
 *   node can verify: a token in `meta.token` (a user's, an agent's, a trusted node's own system
 *   token, or an OIDC issuer's: see verify-token.ts), or the API key in `meta.apiKey`. It is put
 *   in `ctx.locals.principal`, out of reach of the meta that remote answers merge back, and
 *   checked against the action's `access`.
 * - Calls and events a trusted node starts carry its system token, but only to our own services:
 *   a call to an agent's node never carries a credential of ours.
 * - Our events (task.updated, agent.updated, …) are taken only from trusted nodes.
 * - Our service names: a node may announce `tasks`, `agents`, … only with a proof made with the
 *   secret (an HMAC over its node id and instance id in its INFO metadata); otherwise those
 *   services are dropped from its announcement, so no call or balanced event is ever routed to it.
 *   Agent nodes, which hold only API_KEY, accept server services only from nodes proving the key.
 *   Nor may such a node offer actions under our services' names from a service of another name
 *   (`$noServiceNamePrefix`), or listen to our events: it never hears a task, an agent or an audit entry.
 * - Nothing of ours leaves for a node without the proof: packets to it carry no `token` or
 *   `apiKey` in their meta, whatever a call or an event was given.
 * - Moleculer's own `$` events (`$node.disconnected`, …) are raised by each node itself: one that
 *   arrives over the transporter is forged and dropped. Moleculer's `$node` actions (options with
 *   the transporter's and the cache's credentials, host details, metrics) and actions with
 *   `access: "local"` answer only calls started on this node or signed by a trusted one.
 * - A node announcing our own node id with another instance is not obeyed (Moleculer would stop
 *   this process on the spot) unless it proves the secret: it is a genuine duplicate, then.
 *
 * What this does not do: Moleculer's packets are neither signed nor encrypted. A process that can
 * subscribe on the bus (any NATS client holding the bus's credentials, or a broker that reuses a
 * node's id) reads what is sent there, the API key of an agent's registration and agents' tokens
 * included, and may answer in a node's name. The bus's credentials (`transporter.ts`) keep other
 * processes off it; NATS permissions per node, or TLS with per-node users, narrow what a member reads.
 */
import { createHmac } from "node:crypto";
import { Utils, type Context, type Middleware, type ServiceBroker } from "moleculer";
import { isAllowed, type AccessRule } from "../domain/access";
import { EVENTS, type Principal } from "../types";
import type { EnvConfig } from "./config";
import { ApiError, forbidden, unauthorized } from "./errors";
import { mintToken, sameSecret, TokenError } from "./tokens";
import { tokenVerifierOf, type TokenVerifier } from "./verify-token";

/**
 * What an action needs. `system`: trusted nodes only; `delivery`: a signed task delivery (agent
 * nodes' `execute`); `local`: callers on this node (its own gateway) or trusted nodes.
 */
export type Access = AccessRule | "public" | "system" | "delivery" | "local";

/** Services only trusted nodes may offer. */
export const SERVER_SERVICES = ["agents", "tasks", "pipelines", "pipeline-definitions", "audit", "auth", "api", "metrics", "realtime"] as const;
const SERVER_SERVICE_SET: ReadonlySet<string> = new Set(SERVER_SERVICES);
const PROTECTED_EVENTS: ReadonlySet<string> = new Set(Object.values(EVENTS));
const PROTECTED_EVENT_NAMES = [...PROTECTED_EVENTS];

/** Is this one of our services' names (what an agent's registration may not name)? */
export function isServerService(name: string): boolean {
	return SERVER_SERVICE_SET.has(name);
}

/** The principal of a trusted node's own calls. */
export const SYSTEM_ROLE = "system";
const SYSTEM_TOKEN_TTL_SEC = 3600;

export interface TrustMeta {
	token?: string;
	apiKey?: string;
}

/** The principal this node verified for the call or event, or null (anonymous). */
export function principalOf(ctx: Context): Principal | null {
	return ((ctx.locals as { principal?: Principal | null }).principal ?? null) as Principal | null;
}

export function isSystem(principal: Principal | null | undefined): boolean {
	return Boolean(principal?.roles.includes(SYSTEM_ROLE as never));
}

function proof(secret: string, kind: string, namespace: string, nodeID: string, instanceID: string): string {
	return createHmac("sha256", secret).update(`${kind}\n${namespace}\n${nodeID}\n${instanceID}`).digest("hex");
}

/** A call names its action, or (moleculer-web) hands over an endpoint already chosen. */
type ActionRef = string | { action?: { name?: string }; name?: string };

function actionNameOf(ref: ActionRef): string {
	return typeof ref === "string" ? ref : (ref.action?.name ?? ref.name ?? "");
}

function serviceOf(actionName: string): string {
	const dot = actionName.lastIndexOf(".");
	return dot === -1 ? actionName : actionName.slice(0, dot);
}

type CallOptions = { meta?: Record<string, unknown>; parentCtx?: Context } & Record<string, unknown>;
type Call = (action: ActionRef, params?: unknown, opts?: CallOptions) => Promise<unknown>;
type Emit = (eventName: string, payload?: unknown, opts?: unknown) => Promise<void>;
type Handler = (ctx: Context) => Promise<unknown>;
type Announced = Record<string, { name?: string } | undefined>;
type InfoService = { name?: string; fullName?: string; actions?: Announced; events?: Announced };
type InfoPayload = { sender?: string; instanceID?: string; metadata?: Record<string, unknown>; services?: InfoService[] };
type Packet = { type?: string; target?: string | null; payload?: { meta?: unknown; event?: unknown } & Record<string, unknown> };

const namesOf = (key: string, def: { name?: string } | undefined) => (typeof def?.name === "string" && def.name !== key ? [key, def.name] : [key]);

/**
 * An untrusted node's services as we take them: none named like ours, no action in our services'
 * names, no listener of our events (a wildcard that would catch one included).
 */
function withoutOurs(services: InfoService[]): { services: InfoService[]; dropped: boolean } {
	let dropped = false;
	const kept: InfoService[] = [];
	for (const service of services) {
		if ((service.name && SERVER_SERVICE_SET.has(service.name)) || (service.fullName && SERVER_SERVICE_SET.has(service.fullName))) {
			dropped = true;
			continue;
		}
		const filter = (entries: Announced | undefined, ours: (name: string) => boolean): Announced | undefined => {
			if (!entries || typeof entries !== "object") return entries;
			const result: Announced = {};
			for (const [key, def] of Object.entries(entries)) {
				if (namesOf(key, def).some(ours)) dropped = true;
				else result[key] = def;
			}
			return result;
		};
		kept.push({
			...service,
			actions: filter(service.actions, name => SERVER_SERVICE_SET.has(serviceOf(name))),
			events: filter(service.events, pattern => PROTECTED_EVENT_NAMES.some(event => Utils.match(event, pattern)))
		});
	}
	return { services: kept, dropped };
}

export function trustMiddleware(config: EnvConfig): Middleware {
	const { jwtSecret, apiKey } = config.secrets;
	const namespace = config.broker.namespace;
	let tokens: TokenVerifier | null = null;
	let broker: ServiceBroker;
	let system: { token: string; until: number } | null = null;
	const warned = new Set<string>();
	/** Nodes whose last INFO carried the proof: only they get credentials in what we send. */
	const trustedNodes = new Set<string>();
	/** The meta of calls that arrived over the transporter (Moleculer makes it the call's `ctx.meta`). */
	const arrived = new WeakSet<object>();
	/** Once per key; the keys are the senders' choosing, so the memory of them is bounded. */
	const warnOnce = (key: string, fields: object, message: string, level: "warn" | "error" = "warn") => {
		if (warned.has(key)) return;
		if (warned.size >= 1000) warned.clear();
		warned.add(key);
		broker.logger[level](fields, message);
	};

	const systemToken = (): string | undefined => {
		if (!jwtSecret) return undefined;
		if (!system || system.until < Date.now()) {
			const token = mintToken(jwtSecret, { sub: `system:${broker.nodeID}`, roles: [SYSTEM_ROLE as never], expiresInSec: SYSTEM_TOKEN_TTL_SEC }, config.jwt);
			system = { token, until: Date.now() + (SYSTEM_TOKEN_TTL_SEC / 2) * 1000 };
		}
		return system.token;
	};

	/**
	 * The caller's credentials, verified; null for none. A presented but bad credential is refused.
	 * A promise only for a token this node has not verified yet.
	 */
	const principalFrom = (meta: TrustMeta): Principal | null | Promise<Principal> => {
		if (typeof meta.token === "string" && meta.token) {
			if (!tokens) throw unauthorized("This node cannot verify tokens");
			return (
				tokens.cached(meta.token)?.principal ??
				tokens.verify(meta.token).then(
					verified => verified.principal,
					(err: unknown) => {
						throw unauthorized(err instanceof TokenError ? err.message : "Invalid token");
					}
				)
			);
		}
		if (typeof meta.apiKey === "string" && meta.apiKey) {
			if (!apiKey || !sameSecret(meta.apiKey, apiKey)) throw unauthorized("Invalid API key");
			return { sub: "api-key", roles: [], via_api_key: true };
		}
		return null;
	};

	/** Our services' actions say who may call them, and say nothing only when the cluster's own nodes alone may. */
	const enforce = (principal: Principal | null, access: Access | undefined, action: string) => {
		if (access === "public" || access === "delivery" || access === "local") return;
		if (access === undefined && !SERVER_SERVICE_SET.has(serviceOf(action))) return;
		if (isSystem(principal)) return;
		if (access === undefined || access === "system") throw forbidden(`${action} is for the cluster's own nodes`);
		if (!principal) throw unauthorized();
		if (!isAllowed(principal, access)) throw forbidden(`Role ${JSON.stringify(principal.roles)} may not call ${action}`);
	};

	/** On server nodes: the secret's proof; on agent nodes: the API key's. */
	const trustedInfo = (info: InfoPayload): boolean => {
		const { sender, instanceID, metadata } = info;
		if (!sender || !instanceID || !metadata) return false;
		if (jwtSecret) return metadata.trust === proof(jwtSecret, "trust", namespace, sender, instanceID);
		return Boolean(apiKey) && metadata.registrar === proof(apiKey!, "registrar", namespace, sender, instanceID);
	};

	/** Our own services keep their credentials to themselves: nothing of ours goes to an agent's node. */
	const withCredentials = (actionName: string, opts: CallOptions | undefined): CallOptions | undefined => {
		if (!jwtSecret) return opts;
		if (!actionName.startsWith("$") && !SERVER_SERVICE_SET.has(serviceOf(actionName))) return { ...opts, meta: { ...opts?.meta, token: undefined, apiKey: undefined } };
		if (opts?.meta?.token || opts?.meta?.apiKey || opts?.parentCtx) return opts;
		return { ...opts, meta: { ...opts?.meta, token: systemToken() } };
	};

	const withSystemToken = (opts: unknown): unknown => {
		const token = systemToken();
		if (!token) return opts;
		const base: { meta?: object } & Record<string, unknown> = typeof opts === "string" || Array.isArray(opts) ? { groups: opts } : ((opts ?? {}) as { meta?: object });
		return { ...base, meta: { ...base.meta, token } };
	};

	return {
		name: "Trust",

		created(b: ServiceBroker) {
			broker = b;
			// The node's one verifier: it remembers verified tokens for the gateway and the sockets too.
			if (jwtSecret) tokens = tokenVerifierOf(b);
			const metadata = b.metadata as Record<string, unknown>;
			if (jwtSecret) metadata.trust = proof(jwtSecret, "trust", namespace, b.nodeID, b.instanceID);
			if (jwtSecret && apiKey) metadata.registrar = proof(apiKey, "registrar", namespace, b.nodeID, b.instanceID);
		},

		transitMessageHandler(next: (cmd: string, packet: { payload: InfoPayload & Record<string, unknown> }) => unknown) {
			return (cmd: string, packet: { payload: InfoPayload & Record<string, unknown> }) => {
				const payload = packet.payload;
				if (!payload) return next(cmd, packet);
				if (cmd === "INFO") {
					const trusted = trustedInfo(payload);
					if (payload.sender === broker.nodeID && payload.instanceID !== broker.instanceID && !trusted) {
						warnOnce(`self:${payload.instanceID}`, { node: payload.sender }, "a process on the transporter announced this node's id: ignored (a node of ours with the same NODE_ID would prove the secret)", "error");
						return Promise.resolve(false);
					}
					if (payload.sender && trusted) trustedNodes.add(payload.sender);
					else {
						if (payload.sender) trustedNodes.delete(payload.sender);
						const { services, dropped } = withoutOurs(Array.isArray(payload.services) ? payload.services : []);
						payload.services = services;
						if (dropped) warnOnce(`${payload.sender}/${payload.instanceID}`, { node: payload.sender }, "untrusted node announced server services, actions or listeners of our events: ignored");
					}
				} else if (cmd === "EVENT" && typeof payload.event === "string" && payload.event.startsWith("$")) {
					warnOnce(`$event:${payload.event}:${payload.sender}`, { event: payload.event, node: payload.sender }, "a Moleculer event from another node is forged: ignored");
					return Promise.resolve(false);
				} else if (cmd === "REQ") {
					if (!payload.meta || typeof payload.meta !== "object") payload.meta = {};
					arrived.add(payload.meta as object);
				}
				return next(cmd, packet);
			};
		},

		/** What leaves for a node without the proof carries no credential (a system token, a user's token, the API key). */
		transitPublish(next: (packet: Packet) => Promise<unknown>) {
			if (!jwtSecret) return next;
			return (packet: Packet) => {
				const meta = packet.payload?.meta as Record<string, unknown> | undefined;
				if (packet.target && packet.target !== broker.nodeID && !trustedNodes.has(packet.target) && meta && typeof meta === "object" && ("token" in meta || "apiKey" in meta)) {
					const { token: _token, apiKey: _apiKey, ...rest } = meta;
					packet.payload = { ...packet.payload, meta: rest };
				}
				return next(packet);
			};
		},

		call(next: Call) {
			return (action: ActionRef, params?: unknown, opts?: CallOptions) => next(action, params, withCredentials(actionNameOf(action), opts));
		},
		emit(next: Emit) {
			return (eventName: string, payload?: unknown, opts?: unknown) => next(eventName, payload, withSystemToken(opts));
		},
		broadcast(next: Emit) {
			return (eventName: string, payload?: unknown, opts?: unknown) => next(eventName, payload, withSystemToken(opts));
		},

		localAction(next: Handler, action: { name: string; access?: Access; visibility?: string }) {
			if (action.visibility === "private" || action.visibility === "protected") return next;
			// Moleculer's `$node` actions and `local` ones: for this node's own callers (and, with the secret, trusted nodes).
			const ownCallersOnly = action.name.startsWith("$") || action.access === "local";
			// Nothing here can be verified without the secret (agent nodes check their deliveries themselves).
			if (!jwtSecret)
				return ownCallersOnly
					? function ownCallers(ctx: Context) {
							return arrived.has(ctx.meta as object) ? Promise.reject(forbidden(`${action.name} is for this node's own callers`)) : next(ctx);
						}
					: next;
			const refused = (err: unknown) => Promise.reject(err instanceof ApiError ? err : unauthorized());
			const proceed = (ctx: Context, principal: Principal | null, remote: boolean) => {
				try {
					if (!ownCallersOnly) enforce(principal, action.access, action.name);
					else if (remote && !isSystem(principal)) throw forbidden(`${action.name} is for this node's own callers`);
				} catch (err) {
					return refused(err);
				}
				(ctx.locals as { principal?: Principal | null }).principal = principal;
				return next(ctx);
			};
			return function verified(ctx: Context) {
				const remote = arrived.has(ctx.meta as object);
				let principal: Principal | null | Promise<Principal> = null;
				try {
					if (!ownCallersOnly || remote) principal = principalFrom((ctx.meta ?? {}) as TrustMeta);
				} catch (err) {
					return refused(err);
				}
				// Only a token this node has not seen yet waits for verification (an issuer's keys may have to be fetched).
				return principal instanceof Promise ? principal.then(p => proceed(ctx, p, remote), refused) : proceed(ctx, principal, remote);
			};
		},

		localEvent(next: Handler, event: { name: string }) {
			if (!PROTECTED_EVENTS.has(event.name)) return next;
			const deliver = (ctx: Context, principal: Principal | null) => {
				if (!isSystem(principal)) {
					warnOnce(`event:${event.name}:${ctx.nodeID}`, { event: event.name, node: ctx.nodeID }, "event from an untrusted sender: ignored");
					return Promise.resolve();
				}
				(ctx.locals as { principal?: Principal | null }).principal = principal;
				return next(ctx);
			};
			return function fromTrustedNode(ctx: Context) {
				let principal: Principal | null | Promise<Principal>;
				try {
					principal = principalFrom((ctx.meta ?? {}) as TrustMeta);
				} catch {
					principal = null;
				}
				return principal instanceof Promise ? principal.then(p => deliver(ctx, p), () => deliver(ctx, null)) : deliver(ctx, principal);
			};
		}
	} as unknown as Middleware;
}

/**
 * The key an agent checks its deliveries with: derived from the secret and its registration, so
 * every trusted node knows it without storing it, and a new registration gets a new one.
 */
export function deliveryKey(jwtSecret: string, agent: { id: string; registered_at: string }): string {
	return createHmac("sha256", jwtSecret).update(`delivery\n${agent.id}\n${agent.registered_at}`).digest("hex");
}

export function signDelivery(key: string, taskId: string, attempt: number): string {
	return createHmac("sha256", key).update(`${taskId}\n${attempt}`).digest("hex");
}

export function verifyDelivery(key: string, taskId: string, attempt: number, signature: unknown): boolean {
	return typeof signature === "string" && sameSecret(signature, signDelivery(key, taskId, attempt));
}
