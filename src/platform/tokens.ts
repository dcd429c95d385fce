/**
 * HS256 JWTs as the Flask service issues them (`sub`, `roles`, `exp`), plus our agent and
 * task-callback tokens. Only HS256 is accepted: `alg: none` and every other algorithm fail.
 */
import { createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";
import { USER_ROLES, type Principal, type Role } from "../types";

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

export interface MintOptions {
	sub: string;
	roles: Role[];
	expiresInSec?: number;
	agent_id?: string;
	task_id?: string;
	attempt?: number;
	rat?: string;
}

export function mintToken(secret: string, opts: MintOptions): string {
	const claims: Record<string, unknown> = { sub: opts.sub, roles: opts.roles };
	if (opts.agent_id) claims.agent_id = opts.agent_id;
	if (opts.task_id) claims.task_id = opts.task_id;
	if (opts.attempt !== undefined) claims.attempt = opts.attempt;
	if (opts.rat) claims.rat = opts.rat;
	return jwt.sign(claims, keyOf(secret), {
		algorithm: ALGORITHM,
		...(opts.expiresInSec ? { expiresIn: opts.expiresInSec } : {})
	});
}

/** Verifies signature, algorithm and expiry; returns the caller or throws `TokenError`. */
export function verifyToken(secret: string, token: string): Principal {
	let claims: jwt.JwtPayload | string;
	try {
		claims = jwt.verify(token, keyOf(secret), { algorithms: [ALGORITHM] });
	} catch (err) {
		const reason = err instanceof jwt.TokenExpiredError ? "Token expired" : "Invalid token";
		throw new TokenError(reason);
	}
	if (typeof claims === "string" || typeof claims.sub !== "string" || !claims.sub)
		throw new TokenError("Token has no subject");
	const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is Role => ROLES.includes(r)) : [];
	const principal: Principal = { sub: claims.sub, roles };
	if (typeof claims.agent_id === "string") principal.agent_id = claims.agent_id;
	if (typeof claims.task_id === "string") principal.task_id = claims.task_id;
	if (typeof claims.attempt === "number") principal.attempt = claims.attempt;
	if (typeof claims.rat === "string") principal.rat = claims.rat;
	if (roles.includes("agent") && !principal.agent_id) throw new TokenError("Agent token without agent_id");
	return principal;
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
