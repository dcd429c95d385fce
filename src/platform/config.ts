/**
 * The environment, read once into one typed, validated object.
 * Every service gets it from the broker (`appConfig(broker)`), never from `process.env`,
 * so several differently-configured brokers can live in one process (tests, benchmarks).
 *
 * Two stages: `loadConfig` parses the environment (`EnvConfig`, secrets as given), and
 * `resolveSecrets` (secrets.ts) makes the `AppConfig` a node runs on, whose secrets are known.
 */
import os from "node:os";
import path from "node:path";
import { STAGE_TYPES } from "../types";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";
export type StorageKind = "mongo" | "postgres" | "nedb";
export type BalancingStrategy = "RoundRobin" | "Random" | "CpuUsage" | "Latency" | "Shard";

/** The secrets a trusted node holds. */
export interface Secrets {
	/** HS256 secret shared with the Flask service: whoever holds it is trusted (it mints admin tokens). */
	jwtSecret: string;
	/** Key for agent registration and token exchange. */
	apiKey: string;
	/** Key of webhook signatures; generated in development, required in production once a run names a webhook. */
	webhookSecret?: string;
	/** When set, `GET /metrics` needs it as a bearer token. */
	metricsToken?: string;
}

/** What `npm run agent` (and any node with the agent mixin) registers as. */
export interface AgentNodeSettings {
	name: string;
	capabilities: string[];
	concurrency: number;
	/** The reference agent reads and writes local files only inside this folder (absolute). */
	dataRoot: string;
}

/** Verification rules for HS256 tokens (the Flask service's). */
export interface JwtSettings {
	/** The claim that holds the roles. */
	rolesClaim: string;
	/** When set, `iss` must match. */
	issuer?: string;
	/** When set, `aud` must match. */
	audience?: string;
}

/** Certificates and keys, as file paths (re-read on SIGHUP where the README says so). */
export interface TlsSettings {
	/** The gateway serves HTTPS (and wss for socket.io and /ws) with these. */
	certFile?: string;
	keyFile?: string;
	/** Client certificates signed by this CA are required at the gateway. */
	clientCaFile?: string;
	/** TLS to NATS: the CA to trust, and a client certificate for mutual TLS. */
	transporterCaFile?: string;
	transporterCertFile?: string;
	transporterKeyFile?: string;
	/** An extra CA for HTTPS agents and webhooks. */
	outboundCaFile?: string;
}

/** Access tokens from an OpenID Connect issuer, accepted beside HS256 tokens. */
export interface OidcSettings {
	issuer: string;
	audience: string;
	rolesClaim: string;
}

/** Per token subject; 0 = off. */
export interface QuotaSettings {
	/** Task submissions plus pipeline executions per hour. */
	tasksPerHour: number;
	/** Pending, retrying and running tasks at once. */
	maxOpenTasks: number;
}

/** Every URL the server calls is checked against these (see src/runtime/egress.ts). */
export interface EgressSettings {
	/** CIDRs or host names refused: the production defaults plus EGRESS_DENY. */
	deny: string[];
	/** CIDRs or host names allowed even when denied above (EGRESS_ALLOW). */
	allow: string[];
}

/** Everything the environment says except the secrets. */
export interface NodeSettings {
	nodeEnv: string;
	production: boolean;
	serverPort: number;
	nodeId: string;
	/** Moleculer transporter URL; `undefined` = a single node with no transporter. */
	transporter?: string;
	logLevel: LogLevel;
	/** Folder for pino-roll log files; unset = stdout only. */
	logDir?: string;

	storage: StorageKind;
	dataDir: string;
	mongodbUri?: string;
	databaseUrl?: string;
	redisUrl?: string;

	/** Origins allowed by CORS: "*", a list, or none (`[]`: no CORS headers at all, production's default). */
	corsOrigins: string[] | "*";
	bodyLimitBytes: number;
	rateLimitPerMinute: number;

	maxAgents: number;
	heartbeatTimeoutMs: number;
	healthCheckIntervalMs: number;
	healthCheckTimeoutMs: number;
	maxConcurrentTasks: number;
	/** Default per-attempt timeout of a task, seconds (spec: TASK_TIMEOUT). */
	taskTimeoutSec: number;
	retryBaseDelayMs: number;
	retryMaxDelayMs: number;
	callbackTokenTtlSec: number;
	/** Absolute base URL agents use to call back, e.g. http://mcp:8080; unset = this node's own gateway. */
	publicUrl?: string;

	maxWsConnections: number;
	wsClientBufferLimit: number;
	/** A `/ws` socket that has not authenticated within this long is closed. */
	wsAuthTimeoutMs: number;

	metricsEnabled: boolean;
	sentryDsn?: string;
	smtpUrl?: string;
	smtpFrom: string;
	auditRetentionDays: number;
	flaskApiUrl?: string;

	agent: AgentNodeSettings;
	/** Lifetime of an agent token; heartbeats renew it. */
	agentTokenTtlSec: number;
	/** An agent offline this long is removed (hours, decimals allowed). */
	agentRetentionHours: number;
	jwt: JwtSettings;
	egress: EgressSettings;
	/** Unauthenticated socket.io and /ws connections at once from one address. */
	wsMaxUnauthenticatedPerIp: number;
	/** Transporter credentials besides a URL's user:password (NATS token or nkey/creds file). */
	transporterAuth: { token?: string; credsFile?: string };
	tls: TlsSettings;
	/** Unset: only HS256 tokens. */
	oidc?: OidcSettings;
	quotas: QuotaSettings;
	/** This node also runs the reference agent in-process (LOCAL_AGENT; development default). */
	localAgent: boolean;
	/** Finished standalone tasks, and finished runs with their stage tasks, are removed after these many days. */
	retention: { taskDays: number; runDays: number };
	/** S3-compatible stores for the reference agent (the SDK reads the standard AWS_* variables itself). */
	s3: { endpoint?: string; forcePathStyle: boolean };

	broker: {
		namespace: string;
		/** How fast a dead node is noticed (`$node.disconnected`): interval and timeout of Moleculer's node heartbeats. */
		nodeHeartbeatIntervalSec: number;
		nodeHeartbeatTimeoutSec: number;
		requestTimeoutMs: number;
		retries: number;
		retryDelayMs: number;
		circuitBreakerThreshold: number;
		circuitBreakerWindowMs: number;
		circuitBreakerHalfOpenMs: number;
		bulkheadConcurrency: number;
		bulkheadMaxQueueSize: number;
		strategy: BalancingStrategy;
	};
}

/** The environment as parsed: a secret left unset is generated in development (see `secrets.ts`), refused in production. */
export interface EnvConfig extends NodeSettings {
	secrets: Partial<Secrets>;
}

/** A node's configuration once started: its secrets are known. */
export interface AppConfig extends NodeSettings {
	secrets: Secrets;
	/** True when `secrets.ts` generated the secrets (development only). */
	secretsGenerated: boolean;
}

export class ConfigError extends Error {
	constructor(readonly variable: string, message: string) {
		super(`${variable}: ${message}`);
		this.name = "ConfigError";
	}
}

type Env = Record<string, string | undefined>;

function text(env: Env, name: string): string | undefined {
	const value = env[name]?.trim();
	return value ? value : undefined;
}

function integer(env: Env, name: string, fallback: number, min = 0): number {
	const raw = text(env, name);
	if (raw === undefined) return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < min)
		throw new ConfigError(name, `expected an integer >= ${min}, got "${raw}"`);
	return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
	const raw = text(env, name)?.toLowerCase();
	if (raw === undefined) return fallback;
	if (["true", "1", "yes", "on"].includes(raw)) return true;
	if (["false", "0", "no", "off"].includes(raw)) return false;
	throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

const LOG_LEVEL_ALIASES: Record<string, LogLevel> = {
	fatal: "fatal", critical: "fatal", error: "error", warn: "warn", warning: "warn",
	info: "info", debug: "debug", trace: "trace"
};

function logLevel(env: Env): LogLevel {
	const raw = text(env, "LOG_LEVEL");
	if (raw === undefined) return "info";
	const level = LOG_LEVEL_ALIASES[raw.toLowerCase()];
	if (!level) throw new ConfigError("LOG_LEVEL", `unknown level "${raw}" (DEBUG, INFO, WARN, ERROR)`);
	return level;
}

function list(env: Env, name: string): string[] | undefined {
	const items = text(env, name)?.split(",").map(item => item.trim()).filter(Boolean);
	return items?.length ? items : undefined;
}

function decimal(env: Env, name: string, fallback: number, min: number): number {
	const raw = text(env, name);
	if (raw === undefined) return fallback;
	const value = Number(raw);
	if (!Number.isFinite(value) || value < min) throw new ConfigError(name, `expected a number >= ${min}, got "${raw}"`);
	return value;
}

/** Loopback, link-local (cloud metadata at 169.254.169.254 included), unspecified and multicast, IPv4 and IPv6. */
export const PRODUCTION_EGRESS_DENY = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8"];

/** Folders that hold secrets or the system: a data root is never one of them, never inside one, never around one. */
function systemFolders(dataDir: string): string[] {
	return [dataDir, "/proc", "/etc", "/sys", "/dev", "/boot"];
}

/** Home folders hold keys and dot-files: a data root may be a project folder inside one, never a home itself or above it. */
function homeFolders(): string[] {
	return ["/root", "/home", os.homedir()];
}

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

function dataRoot(env: Env, dataDir: string): string {
	const root = path.resolve(text(env, "AGENT_DATA_ROOT") ?? "./agent-data");
	if (root === path.parse(root).root) throw new ConfigError("AGENT_DATA_ROOT", "must not be the file system's root");
	const clash = systemFolders(dataDir).find(folder => inside(root, folder) || inside(folder, root)) ?? homeFolders().find(home => inside(home, root));
	if (clash) throw new ConfigError("AGENT_DATA_ROOT", `must not be or hold ${clash}, nor lie inside a system folder (they hold secrets)`);
	return root;
}

function agentSettings(env: Env, dataDir: string): AgentNodeSettings {
	return {
		name: text(env, "AGENT_NAME") ?? `reference-agent-${os.hostname()}`,
		capabilities: list(env, "AGENT_CAPABILITIES") ?? [...STAGE_TYPES],
		concurrency: integer(env, "AGENT_CONCURRENCY", 2, 1),
		dataRoot: dataRoot(env, dataDir)
	};
}

/** The callback base handed to HTTP agents: an absolute http(s) URL, no credentials (they would reach every agent), no query. */
function publicUrl(env: Env): string | undefined {
	const raw = text(env, "PUBLIC_URL");
	if (raw === undefined) return undefined;
	const url = URL.canParse(raw) ? new URL(raw) : undefined;
	if (url?.protocol !== "http:" && url?.protocol !== "https:") throw new ConfigError("PUBLIC_URL", "expected an absolute http:// or https:// URL");
	if (url.username || url.password) throw new ConfigError("PUBLIC_URL", "must not carry credentials (user:password@): it is handed to every agent");
	if (url.search || url.hash) throw new ConfigError("PUBLIC_URL", "must not have a query or a fragment: callback paths are appended to it");
	return raw.replace(/\/+$/, "");
}

/** Claims with a meaning of their own: roles kept in one of them would be misread or would clash when we mint. */
const RESERVED_CLAIMS = ["sub", "exp", "iat", "nbf", "iss", "aud", "jti", "type", "agent_id", "task_id", "attempt", "rat"];

function jwtSettings(env: Env): JwtSettings {
	const rolesClaim = text(env, "JWT_ROLES_CLAIM") ?? "roles";
	if (RESERVED_CLAIMS.includes(rolesClaim)) throw new ConfigError("JWT_ROLES_CLAIM", `"${rolesClaim}" is a registered claim: name another`);
	return { rolesClaim, issuer: text(env, "JWT_ISSUER"), audience: text(env, "JWT_AUDIENCE") };
}

function tlsSettings(env: Env): TlsSettings {
	const tls: TlsSettings = {
		certFile: text(env, "TLS_CERT_FILE"),
		keyFile: text(env, "TLS_KEY_FILE"),
		clientCaFile: text(env, "TLS_CLIENT_CA_FILE"),
		transporterCaFile: text(env, "TRANSPORTER_TLS_CA_FILE"),
		transporterCertFile: text(env, "TRANSPORTER_TLS_CERT_FILE"),
		transporterKeyFile: text(env, "TRANSPORTER_TLS_KEY_FILE"),
		outboundCaFile: text(env, "OUTBOUND_CA_FILE")
	};
	if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) throw new ConfigError(tls.certFile ? "TLS_KEY_FILE" : "TLS_CERT_FILE", "TLS_CERT_FILE and TLS_KEY_FILE go together");
	if (tls.clientCaFile && !tls.certFile) throw new ConfigError("TLS_CLIENT_CA_FILE", "needs TLS_CERT_FILE and TLS_KEY_FILE (client certificates are a TLS matter)");
	if (Boolean(tls.transporterCertFile) !== Boolean(tls.transporterKeyFile))
		throw new ConfigError(tls.transporterCertFile ? "TRANSPORTER_TLS_KEY_FILE" : "TRANSPORTER_TLS_CERT_FILE", "TRANSPORTER_TLS_CERT_FILE and TRANSPORTER_TLS_KEY_FILE go together");
	return tls;
}

function oidcSettings(env: Env): OidcSettings | undefined {
	const issuer = text(env, "OIDC_ISSUER");
	const audience = text(env, "OIDC_AUDIENCE");
	if (!issuer) {
		if (audience) throw new ConfigError("OIDC_AUDIENCE", "goes with OIDC_ISSUER");
		return undefined;
	}
	if (!URL.canParse(issuer) || !/^https?:$/.test(new URL(issuer).protocol)) throw new ConfigError("OIDC_ISSUER", "expected the issuer's https:// URL");
	if (!audience) throw new ConfigError("OIDC_AUDIENCE", "is required with OIDC_ISSUER (tokens for other audiences are refused)");
	return { issuer: issuer.replace(/\/+$/, ""), audience, rolesClaim: text(env, "OIDC_ROLES_CLAIM") ?? "roles" };
}

const STRATEGIES: BalancingStrategy[] = ["RoundRobin", "Random", "CpuUsage", "Latency", "Shard"];

/**
 * `server` nodes (every service, the gateway, the REPL) need JWT_SECRET and API_KEY in production;
 * `agent` nodes need API_KEY only, and never JWT_SECRET: they are not trusted.
 */
export type NodeRole = "server" | "agent";

export function loadConfig(env: Env = process.env, role: NodeRole = "server"): EnvConfig {
	const nodeEnv = text(env, "NODE_ENV") ?? "development";
	const production = nodeEnv === "production";
	const mongodbUri = text(env, "MONGODB_URI");
	const databaseUrl = text(env, "DATABASE_URL");
	if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl))
		throw new ConfigError("DATABASE_URL", "expected a postgres:// URL");
	const transporter = text(env, "TRANSPORTER");
	const serverPort = integer(env, "SERVER_PORT", 8080);
	const strategy = (text(env, "BALANCING_STRATEGY") ?? "RoundRobin") as BalancingStrategy;
	if (!STRATEGIES.includes(strategy))
		throw new ConfigError("BALANCING_STRATEGY", `one of ${STRATEGIES.join(", ")}`);
	const cors = text(env, "CORS_ORIGINS");
	const dataDir = path.resolve(text(env, "DATA_DIR") ?? "./data");

	const config: EnvConfig = {
		nodeEnv,
		production,
		serverPort,
		nodeId: text(env, "NODE_ID") ?? `${os.hostname()}-${process.pid}`,
		transporter,
		logLevel: logLevel(env),
		logDir: text(env, "LOG_DIR"),
		storage: mongodbUri ? "mongo" : databaseUrl ? "postgres" : "nedb",
		dataDir,
		mongodbUri,
		databaseUrl,
		redisUrl: text(env, "REDIS_URL"),
		secrets: {
			jwtSecret: text(env, "JWT_SECRET"),
			apiKey: text(env, "API_KEY"),
			webhookSecret: text(env, "WEBHOOK_SECRET"),
			metricsToken: text(env, "METRICS_TOKEN")
		},
		// Unset: any origin in development, none in production (a browser on another site gets no CORS answer).
		corsOrigins: cors === "*" ? "*" : cors ? cors.split(",").map(o => o.trim()).filter(Boolean) : production ? [] : "*",
		bodyLimitBytes: integer(env, "BODY_LIMIT_BYTES", 1024 * 1024, 1),
		rateLimitPerMinute: integer(env, "RATE_LIMIT_PER_MINUTE", 600, 1),
		maxAgents: integer(env, "MAX_AGENTS", 100, 1),
		heartbeatTimeoutMs: integer(env, "HEARTBEAT_TIMEOUT_MS", 30_000, 100),
		healthCheckIntervalMs: integer(env, "HEALTH_CHECK_INTERVAL_MS", 10_000, 50),
		healthCheckTimeoutMs: integer(env, "HEALTH_CHECK_TIMEOUT_MS", 3_000, 10),
		maxConcurrentTasks: integer(env, "MAX_CONCURRENT_TASKS", 50, 1),
		taskTimeoutSec: integer(env, "TASK_TIMEOUT", 3600, 1),
		retryBaseDelayMs: integer(env, "RETRY_BASE_DELAY_MS", 1000, 0),
		retryMaxDelayMs: integer(env, "RETRY_MAX_DELAY_MS", 60_000, 0),
		callbackTokenTtlSec: integer(env, "CALLBACK_TOKEN_TTL_SEC", 0, 0),
		publicUrl: publicUrl(env),
		maxWsConnections: integer(env, "MAX_WS_CONNECTIONS", 10_000, 1),
		wsClientBufferLimit: integer(env, "WS_CLIENT_BUFFER_BYTES", 1024 * 1024, 1024),
		wsAuthTimeoutMs: integer(env, "WS_AUTH_TIMEOUT_MS", 10_000, 10),
		metricsEnabled: flag(env, "METRICS_ENABLED", true),
		sentryDsn: text(env, "SENTRY_DSN"),
		smtpUrl: text(env, "SMTP_URL"),
		smtpFrom: text(env, "SMTP_FROM") ?? "mcp-server@localhost",
		auditRetentionDays: integer(env, "AUDIT_RETENTION_DAYS", 90, 1),
		flaskApiUrl: text(env, "FLASK_API_URL"),
		agent: agentSettings(env, dataDir),
		agentTokenTtlSec: integer(env, "AGENT_TOKEN_TTL_SEC", 86_400, 60),
		agentRetentionHours: decimal(env, "AGENT_RETENTION_HOURS", 168, 0.001),
		jwt: jwtSettings(env),
		egress: { deny: [...(production ? PRODUCTION_EGRESS_DENY : []), ...(list(env, "EGRESS_DENY") ?? [])], allow: list(env, "EGRESS_ALLOW") ?? [] },
		wsMaxUnauthenticatedPerIp: integer(env, "WS_MAX_UNAUTHENTICATED_PER_IP", 20, 1),
		transporterAuth: { token: text(env, "TRANSPORTER_TOKEN"), credsFile: text(env, "TRANSPORTER_CREDS_FILE") },
		tls: tlsSettings(env),
		oidc: oidcSettings(env),
		quotas: { tasksPerHour: integer(env, "TASK_QUOTA_PER_HOUR", 0, 0), maxOpenTasks: integer(env, "MAX_OPEN_TASKS_PER_SUBJECT", 0, 0) },
		localAgent: flag(env, "LOCAL_AGENT", !production),
		retention: { taskDays: decimal(env, "TASK_RETENTION_DAYS", 7, 0.00001), runDays: decimal(env, "RUN_RETENTION_DAYS", 30, 0.00001) },
		s3: { endpoint: text(env, "AWS_ENDPOINT_URL_S3"), forcePathStyle: flag(env, "S3_FORCE_PATH_STYLE", false) },
		broker: {
			namespace: text(env, "NAMESPACE") ?? "mcp",
			nodeHeartbeatIntervalSec: integer(env, "NODE_HEARTBEAT_INTERVAL_SEC", 2, 1),
			nodeHeartbeatTimeoutSec: integer(env, "NODE_HEARTBEAT_TIMEOUT_SEC", 6, 2),
			requestTimeoutMs: integer(env, "REQUEST_TIMEOUT_MS", 10_000, 0),
			retries: integer(env, "REQUEST_RETRIES", 2, 0),
			retryDelayMs: integer(env, "REQUEST_RETRY_DELAY_MS", 100, 0),
			circuitBreakerThreshold: Number(text(env, "CIRCUIT_BREAKER_THRESHOLD") ?? 0.5),
			circuitBreakerWindowMs: integer(env, "CIRCUIT_BREAKER_WINDOW_MS", 60_000, 1000),
			circuitBreakerHalfOpenMs: integer(env, "CIRCUIT_BREAKER_HALF_OPEN_MS", 10_000, 100),
			bulkheadConcurrency: integer(env, "BULKHEAD_CONCURRENCY", 100, 1),
			bulkheadMaxQueueSize: integer(env, "BULKHEAD_MAX_QUEUE", 10_000, 1),
			strategy
		}
	};
	if (role === "agent") {
		// Whatever the environment holds, an agent node keeps no master secret.
		config.secrets = { apiKey: config.secrets.apiKey };
		if (production && !config.secrets.apiKey) throw new ConfigError("API_KEY", "an agent node needs it to register when NODE_ENV=production");
	} else if (production && (!config.secrets.jwtSecret || !config.secrets.apiKey))
		throw new ConfigError(config.secrets.jwtSecret ? "API_KEY" : "JWT_SECRET", "must be set when NODE_ENV=production");
	return config;
}

/** Names of every variable `loadConfig` understands (checked against docker-compose.yml by a test). */
export const CONFIG_VARIABLES = [
	"NODE_ENV", "SERVER_PORT", "WS_PORT", "NODE_ID", "TRANSPORTER", "LOG_LEVEL", "LOG_DIR", "DATA_DIR",
	"MONGODB_URI", "DATABASE_URL", "REDIS_URL", "JWT_SECRET", "API_KEY", "CORS_ORIGINS", "BODY_LIMIT_BYTES",
	"RATE_LIMIT_PER_MINUTE", "MAX_AGENTS", "HEARTBEAT_TIMEOUT_MS", "HEALTH_CHECK_INTERVAL_MS",
	"HEALTH_CHECK_TIMEOUT_MS", "MAX_CONCURRENT_TASKS", "TASK_TIMEOUT", "RETRY_BASE_DELAY_MS",
	"RETRY_MAX_DELAY_MS", "CALLBACK_TOKEN_TTL_SEC", "PUBLIC_URL", "MAX_WS_CONNECTIONS", "WS_CLIENT_BUFFER_BYTES", "WS_AUTH_TIMEOUT_MS",
	"METRICS_ENABLED", "SENTRY_DSN", "SMTP_URL", "SMTP_FROM", "AUDIT_RETENTION_DAYS", "FLASK_API_URL",
	"REQUEST_TIMEOUT_MS", "REQUEST_RETRIES", "REQUEST_RETRY_DELAY_MS", "CIRCUIT_BREAKER_THRESHOLD",
	"CIRCUIT_BREAKER_WINDOW_MS", "CIRCUIT_BREAKER_HALF_OPEN_MS", "BULKHEAD_CONCURRENCY", "BULKHEAD_MAX_QUEUE",
	"BALANCING_STRATEGY", "NAMESPACE", "NODE_HEARTBEAT_INTERVAL_SEC", "NODE_HEARTBEAT_TIMEOUT_SEC", "SERVICES", "SERVICEDIR",
	"AGENT_NAME", "AGENT_CAPABILITIES", "AGENT_CONCURRENCY", "AGENT_DATA_ROOT", "AGENT_TOKEN_TTL_SEC", "AGENT_RETENTION_HOURS",
	"EGRESS_DENY", "EGRESS_ALLOW", "WEBHOOK_SECRET", "METRICS_TOKEN", "JWT_ROLES_CLAIM", "JWT_ISSUER", "JWT_AUDIENCE",
	"TRANSPORTER_TOKEN", "TRANSPORTER_CREDS_FILE", "WS_MAX_UNAUTHENTICATED_PER_IP",
	"TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE", "TRANSPORTER_TLS_CA_FILE", "TRANSPORTER_TLS_CERT_FILE", "TRANSPORTER_TLS_KEY_FILE",
	"OUTBOUND_CA_FILE", "OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_ROLES_CLAIM", "TASK_QUOTA_PER_HOUR", "MAX_OPEN_TASKS_PER_SUBJECT",
	"LOCAL_AGENT", "TASK_RETENTION_DAYS", "RUN_RETENTION_DAYS", "AWS_ENDPOINT_URL_S3", "S3_FORCE_PATH_STYLE",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_PROFILE"
] as const;
