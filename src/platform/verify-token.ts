/**
 * The one check of a presented token, used by the gateway, the trust middleware (every action, on
 * every node that holds JWT_SECRET) and the real-time channels. The header's `alg` says who signed:
 *
 * - `HS256`: the Flask service or this cluster, with JWT_SECRET (tokens.ts: `JWT_*` rules). Only
 *   ever that secret: a token switched to HS256 and signed with the issuer's public key fails.
 * - `RS256`, `PS256`, `ES256`, when OIDC_ISSUER is set: the issuer, with a key it publishes. Its
 *   discovery document names the JWKS, both fetched on first use; jose's remote JWKS caches the
 *   keys and fetches again for an unknown `kid` only once the cooldown since the last fetch has
 *   passed, so tokens with made-up kids cannot make us hammer the issuer. `iss`, `aud` and `exp`
 *   are required; roles come from OIDC_ROLES_CLAIM, user roles only (an IdP never makes an agent
 *   or a cluster node), and the subject is the token's `sub` as is (see `principalOfOidcClaims`).
 * - anything else (`none`, other algorithms, OIDC algorithms without OIDC_ISSUER): refused.
 *
 * Every refusal is a `TokenError` (401), an unreachable issuer too (logged, never a 500).
 *
 * Tokens verified once are remembered (`VerifiedTokens`), one cache per node for the gateway, the
 * sockets and the trust middleware: a client sends the same token with every request, and its
 * HMAC and claims checks were a tenth of a cheap read. The token is the key, whole: any other
 * bytes, a forged signature included, are verified afresh.
 */
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as jose, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { ServiceBroker } from "moleculer";
import { USER_ROLES, type Principal, type UserRole } from "../types";
import { nodeConfig } from "./app-config";
import type { JwtSettings, OidcSettings } from "./config";
import { checkSubject, DEFAULT_JWT_SETTINGS, TokenError, verifyTokenClaims, type VerifiedToken } from "./tokens";

/** What the issuer may sign with. No HMAC (its secret would be ours to share), no `none`. */
export const OIDC_ALGORITHMS = ["RS256", "PS256", "ES256"] as const;
/** An unknown `kid` refetches the JWKS at most this often: the rate limit of key refreshes. */
export const JWKS_COOLDOWN_MS = 30_000;
/** Keys are refetched when this old even when every kid is known, so a retired key stops verifying. */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/** Each fetch of the discovery document or the JWKS. */
export const ISSUER_TIMEOUT_MS = 5_000;
/** After a failed discovery, tokens are refused without asking again for this long. */
const DISCOVERY_RETRY_MS = 5_000;
/** An unreachable issuer is logged once per this long (with how many failures were not). */
const FAILURE_LOG_EVERY_MS = 30_000;

/** Subjects this cluster gives its own principals: agents, nodes, the API key. An outside token may not take them. */
const RESERVED_SUBJECT = /^(agent:|system:|api-key$)/;

export interface TokenVerifier {
	/** Resolves the verified caller and its expiry; rejects with `TokenError`. */
	verify(token: string): Promise<VerifiedToken>;
	/** The same, at once, for a token this node verified before and still holds good; else undefined. */
	cached(token: string): VerifiedToken | undefined;
}

export interface TokenVerifierOptions {
	/** Unset on nodes that cannot verify HS256 tokens (agent nodes). */
	jwtSecret?: string;
	jwt?: JwtSettings;
	oidc?: OidcSettings;
	logger?: { warn(fields: object, message: string): void };
}

/** The issuer could not be asked (discovery, a JWKS fetch, a malformed key set): its tokens are refused meanwhile. */
class IssuerUnavailable extends Error {}

/** A user's principal from verified OIDC claims (`sub` as is: the issuer identifies the same users as the Flask service). */
function principalOfOidcClaims(claims: JWTPayload, rolesClaim: string): Principal {
	if (claims.type !== undefined && claims.type !== "access") throw new TokenError("Not an access token");
	checkSubject(claims.sub);
	if (RESERVED_SUBJECT.test(claims.sub)) throw new TokenError("Token subject not accepted");
	const granted = claims[rolesClaim];
	const named = typeof granted === "string" ? [granted] : Array.isArray(granted) ? granted : [];
	const roles = USER_ROLES.filter((role: UserRole) => named.includes(role));
	return { sub: claims.sub, roles };
}

function oidcRefusal(err: unknown): TokenError {
	if (err instanceof TokenError) return err;
	if (err instanceof IssuerUnavailable) return new TokenError("Token issuer unavailable");
	if (err instanceof jose.JWTExpired) return new TokenError("Token expired");
	if (err instanceof jose.JWTClaimValidationFailed) {
		if (err.claim === "iss") return new TokenError("Token issuer not accepted");
		if (err.claim === "aud") return new TokenError("Token audience not accepted");
		if (err.claim === "exp") return new TokenError("Token has no expiry");
		if (err.claim === "sub") return new TokenError("Token has no subject");
	}
	if (err instanceof jose.JWKSNoMatchingKey) return new TokenError("Token signing key not known");
	return new TokenError("Invalid token");
}

/** The issuer's keys, found through its discovery document on first use. */
function issuerKeys(oidc: OidcSettings, onFailure: (err: Error) => void) {
	let found: Promise<{ issuer: string; keys: JWTVerifyGetKey }> | null = null;
	let failedAt = -Infinity;

	const discover = async () => {
		const res = await fetch(`${oidc.issuer}/.well-known/openid-configuration`, {
			headers: { accept: "application/json" },
			redirect: "error",
			signal: AbortSignal.timeout(ISSUER_TIMEOUT_MS)
		});
		if (res.status !== 200) throw new Error(`discovery document: HTTP ${res.status}`);
		const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
		// OIDC_ISSUER is kept without a trailing slash; the issuer's own identifier may have one (its `iss`).
		if (doc.issuer !== oidc.issuer && doc.issuer !== `${oidc.issuer}/`) throw new Error(`discovery document names another issuer: ${JSON.stringify(doc.issuer)}`);
		const jwksUri = typeof doc.jwks_uri === "string" && URL.canParse(doc.jwks_uri) ? new URL(doc.jwks_uri) : null;
		if (!jwksUri || (jwksUri.protocol !== "https:" && jwksUri.protocol !== new URL(oidc.issuer).protocol))
			throw new Error(`discovery document: no usable jwks_uri (${JSON.stringify(doc.jwks_uri)})`);
		const remote = createRemoteJWKSet(jwksUri, { cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS, timeoutDuration: ISSUER_TIMEOUT_MS });
		// No key for the token's kid and alg (or several, without a kid) is the token's problem;
		// anything else (fetch, timeout, a malformed key set) the issuer's.
		const keys: JWTVerifyGetKey = (header, token) =>
			remote(header, token).catch((err: unknown) => {
				if (err instanceof jose.JWKSNoMatchingKey || err instanceof jose.JWKSMultipleMatchingKeys || err instanceof jose.JOSENotSupported) throw err;
				onFailure(err as Error);
				throw new IssuerUnavailable();
			});
		return { issuer: doc.issuer, keys };
	};

	return async () => {
		if (!found) {
			if (Date.now() - failedAt < DISCOVERY_RETRY_MS) throw new IssuerUnavailable();
			found = discover();
			found.catch((err: Error) => {
				found = null;
				failedAt = Date.now();
				onFailure(err);
			});
		}
		return found.catch(() => {
			throw new IssuerUnavailable();
		});
	};
}

/** How many verified tokens a node remembers (the oldest go first): a few MiB at most. */
const REMEMBERED_TOKENS = 10_000;

/**
 * Tokens already verified, with what they proved: until their expiry, and an issuer's for at most
 * as long as its keys are kept (so a key it retires stops verifying its tokens here too).
 * Verifications in flight are shared: a burst with one new token verifies it once.
 */
class VerifiedTokens {
	private readonly byToken = new Map<string, VerifiedToken & { until: number }>();
	private readonly pending = new Map<string, Promise<VerifiedToken>>();

	cached(token: string, now = Date.now()): VerifiedToken | undefined {
		const known = this.byToken.get(token);
		if (!known) return undefined;
		if (now >= known.until) {
			this.byToken.delete(token);
			return undefined;
		}
		// A copy: a caller that adds to its principal must not change the next request's.
		return { principal: { ...known.principal, roles: [...known.principal.roles] }, expiresAt: known.expiresAt };
	}

	verify(token: string, verifyAfresh: (token: string) => Promise<VerifiedToken & { keepMs?: number }>): Promise<VerifiedToken> {
		const known = this.cached(token);
		if (known) return Promise.resolve(known);
		let verifying = this.pending.get(token);
		if (!verifying) {
			verifying = verifyAfresh(token)
				.then(({ principal, expiresAt, keepMs }) => {
					if (this.byToken.size >= REMEMBERED_TOKENS) this.byToken.delete(this.byToken.keys().next().value!);
					// jsonwebtoken's and jose's rule: expired from the second `exp` names.
					const until = Math.min(Math.floor(expiresAt / 1000) * 1000, keepMs === undefined ? Infinity : Date.now() + keepMs);
					this.byToken.set(token, { principal, expiresAt, until });
					return this.cached(token) ?? { principal, expiresAt };
				})
				.finally(() => this.pending.delete(token));
			this.pending.set(token, verifying);
		}
		return verifying;
	}
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
	const { jwtSecret, oidc, logger } = options;
	const jwt = options.jwt ?? DEFAULT_JWT_SETTINGS;
	let lastLogged = -Infinity;
	let unlogged = 0;
	const onIssuerFailure = (err: Error) => {
		if (Date.now() - lastLogged < FAILURE_LOG_EVERY_MS) return void unlogged++;
		logger?.warn({ issuer: oidc?.issuer, err: err.message, cause: (err.cause as Error | undefined)?.message, failures_not_logged: unlogged }, "OIDC issuer unavailable: its tokens are refused (401)");
		lastLogged = Date.now();
		unlogged = 0;
	};
	const keys = oidc ? issuerKeys(oidc, onIssuerFailure) : null;
	const remembered = new VerifiedTokens();

	const verifyOidc = async (token: string, settings: OidcSettings): Promise<VerifiedToken> => {
		// A token naming another issuer is refused before anything is fetched for it.
		const iss = decodeJwt(token).iss;
		if (iss !== settings.issuer && iss !== `${settings.issuer}/`) throw new TokenError("Token issuer not accepted");
		const { issuer, keys: getKey } = await keys!();
		const { payload } = await jwtVerify(token, getKey, { issuer, audience: settings.audience, algorithms: [...OIDC_ALGORITHMS], requiredClaims: ["exp"] });
		return { principal: principalOfOidcClaims(payload, settings.rolesClaim), expiresAt: payload.exp! * 1000 };
	};

	const verifyAfresh = async (token: string): Promise<VerifiedToken & { keepMs?: number }> => {
		let alg: unknown;
		try {
			alg = decodeProtectedHeader(token).alg;
		} catch {
			throw new TokenError("Invalid token");
		}
		if (alg === "HS256") {
			if (!jwtSecret) throw new TokenError("This node cannot verify tokens");
			return verifyTokenClaims(jwtSecret, token, jwt);
		}
		if (oidc && OIDC_ALGORITHMS.includes(alg as never)) {
			try {
				return { ...(await verifyOidc(token, oidc)), keepMs: JWKS_MAX_AGE_MS };
			} catch (err) {
				throw oidcRefusal(err);
			}
		}
		throw new TokenError("Token algorithm not accepted");
	};

	return {
		cached: token => remembered.cached(token),
		verify: token => remembered.verify(token, verifyAfresh)
	};
}

const verifiers = new WeakMap<ServiceBroker, TokenVerifier>();

/** This node's verifier (one issuer key cache per node), from its config. */
export function tokenVerifierOf(broker: ServiceBroker): TokenVerifier {
	let verifier = verifiers.get(broker);
	if (!verifier) {
		const config = nodeConfig(broker);
		verifier = createTokenVerifier({ jwtSecret: config.secrets.jwtSecret, jwt: config.jwt, oidc: config.oidc, logger: broker.getLogger("oidc") });
		verifiers.set(broker, verifier);
	}
	return verifier;
}
