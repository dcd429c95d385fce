/**
 * HS256 JWTs as the Flask service issues them (`sub`, `roles`, `exp`), plus our agent and
 * task-callback tokens. Only HS256 is accepted: `alg: none` and every other algorithm fail.
 *
 * The rules (`config.jwt`) are the same for the tokens we check and the ones we mint, so that every
 * token we issue passes our own check: `exp` always, the roles under `JWT_ROLES_CLAIM`, and `iss` /
 * `aud` when JWT_ISSUER / JWT_AUDIENCE are set. Flask-JWT-Extended signs its refresh tokens with the
 * same secret, marked `type: "refresh"`: only a token without `type`, or with `type: "access"`, is
 * accepted.
 */
import { createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";
import { USER_ROLES, type Principal, type Role } from "../types";
import type { JwtSettings } from "./config";

const ALGORITHM = "HS256";
const ROLES: readonly Role[] = [...USER_ROLES, "agent", "system"];

/**
 * jsonwebtoken first tries to parse a string secret as a PEM key (and throws and catches) on every
 * call: ~400 µs. A KeyObject skips that (~7 µs), and every REST request verifies a token.
 */
const keys = new Map<string, KeyObject>();
function keyOf(secret: string): KeyObject {
	let key = keys.get(secret);
	if (!key) keys.set(secret, (key = createSecretKey(Buffer.from(secret))));
	return key;
}

export class TokenError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "TokenError";
	}
}

/** The rules when none are configured: roles in `roles`, no issuer or audience. */
export const DEFAULT_JWT_SETTINGS: Readonly<JwtSettings> = Object.freeze({ rolesClaim: "roles" });

/** Flask-JWT-Extended marks its tokens `type: "access"` or `"refresh"`: only the first is a credential here. */
const ACCESS_TYPE = "access";

export interface MintOptions {
	sub: string;
	roles: Role[];
	/** Lifetime in seconds: every token we mint expires. */
	expiresInSec: number;
	agent_id?: string;
	task_id?: string;
	attempt?: number;
	rat?: string;
}

export function mintToken(secret: string, opts: MintOptions, settings: JwtSettings = DEFAULT_JWT_SETTINGS): string {
	if (!Number.isFinite(opts.expiresInSec) || opts.expiresInSec <= 0) throw new TypeError(`expiresInSec must be a positive number, got ${opts.expiresInSec}`);
	const claims: Record<string, unknown> = { sub: opts.sub, [settings.rolesClaim]: opts.roles };
	if (opts.agent_id) claims.agent_id = opts.agent_id;
	if (opts.task_id) claims.task_id = opts.task_id;
	if (opts.attempt !== undefined) claims.attempt = opts.attempt;
	if (opts.rat) claims.rat = opts.rat;
	return jwt.sign(claims, keyOf(secret), {
		algorithm: ALGORITHM,
		expiresIn: opts.expiresInSec,
		...(settings.issuer ? { issuer: settings.issuer } : {}),
		...(settings.audience ? { audience: settings.audience } : {})
	});
}

export interface VerifiedToken {
	principal: Principal;
	/** Epoch ms of the token's `exp`. */
	expiresAt: number;
}

function refusal(err: unknown): TokenError {
	if (err instanceof jwt.TokenExpiredError) return new TokenError("Token expired");
	if (err instanceof jwt.JsonWebTokenError && /^jwt (issuer|audience) invalid/.test(err.message))
		return new TokenError(err.message.startsWith("jwt issuer") ? "Token issuer not accepted" : "Token audience not accepted");
	return new TokenError("Invalid token");
}

/** An agent's own token: it names the registration (`rat`), so a new registration or a removal revokes it. */
export function mintAgentToken(secret: string, agent: { id: string; registered_at: string }, ttlSec: number, settings?: JwtSettings): string {
	return mintToken(secret, { sub: `agent:${agent.id}`, roles: ["agent"], agent_id: agent.id, rat: agent.registered_at, expiresInSec: ttlSec }, settings);
}

/** Verifies signature, algorithm, expiry, `type`, and `iss`/`aud` when configured; throws `TokenError`. */
/** The longest subject accepted: it is stored as a task's and a run's `created_by` (an indexed VARCHAR(255) in PostgreSQL). */
export const MAX_SUBJECT_LENGTH = 255;

/** A token's `sub`, from whichever issuer: present, a string, and short enough to be stored. */
export function checkSubject(sub: unknown): asserts sub is string {
	if (typeof sub !== "string" || !sub) throw new TokenError("Token has no subject");
	if (sub.length > MAX_SUBJECT_LENGTH) throw new TokenError(`Token subject longer than ${MAX_SUBJECT_LENGTH} characters`);
}

export function verifyTokenClaims(secret: string, token: string, settings: JwtSettings = DEFAULT_JWT_SETTINGS): VerifiedToken {
	let claims: jwt.JwtPayload | string;
	try {
		claims = jwt.verify(token, keyOf(secret), {
			algorithms: [ALGORITHM],
			...(settings.issuer ? { issuer: settings.issuer } : {}),
			...(settings.audience ? { audience: settings.audience } : {})
		});
	} catch (err) {
		throw refusal(err);
	}
	if (typeof claims === "string") throw new TokenError("Invalid token");
	if (typeof claims.exp !== "number") throw new TokenError("Token has no expiry");
	if (claims.type !== undefined && claims.type !== ACCESS_TYPE) throw new TokenError("Not an access token");
	checkSubject(claims.sub);
	const granted: unknown = claims[settings.rolesClaim];
	const roles = Array.isArray(granted) ? granted.filter((r): r is Role => ROLES.includes(r)) : [];
	const principal: Principal = { sub: claims.sub, roles };
	if (typeof claims.agent_id === "string") principal.agent_id = claims.agent_id;
	if (typeof claims.task_id === "string") principal.task_id = claims.task_id;
	if (typeof claims.attempt === "number") principal.attempt = claims.attempt;
	if (typeof claims.rat === "string") principal.rat = claims.rat;
	if (roles.includes("agent") && !principal.agent_id) throw new TokenError("Agent token without agent_id");
	return { principal, expiresAt: claims.exp * 1000 };
}

/** `verifyTokenClaims`, the caller only. */
export function verifyToken(secret: string, token: string, settings: JwtSettings = DEFAULT_JWT_SETTINGS): Principal {
	return verifyTokenClaims(secret, token, settings).principal;
}

/** Expiry (epoch seconds) of a token already verified; undefined when it has none. */
export function expiryOf(token: string): number | undefined {
	const exp = (jwt.decode(token, { json: true }) ?? {}).exp;
	return typeof exp === "number" ? exp : undefined;
}

/** `Authorization: Bearer <token>` → token, or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
	const value = Array.isArray(header) ? header[0] : header;
	const match = value?.match(/^Bearer\s+(\S+)\s*$/i);
	return match?.[1];
}

/** Constant-time comparison of a presented secret (API key) with the configured one. */
export function sameSecret(presented: string, expected: string): boolean {
	const a = Buffer.from(presented);
	const b = Buffer.from(expected);
	return a.length === b.length && timingSafeEqual(a, b);
}
