/**
 * The panel reads the roles of its token to decide which controls to show. It does not verify
 * the signature (it cannot, and need not): the server checks every call and refuses anyway.
 */
import type { Role, UserRole } from "../../../src/types";

export interface TokenClaims {
	sub: string;
	roles: Role[];
	/** Epoch seconds. */
	exp: number | null;
}

function base64UrlDecode(part: string): string {
	const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
	const padded = base64 + "===".slice((base64.length + 3) % 4);
	const bytes = Uint8Array.from(atob(padded), c => c.charCodeAt(0));
	return new TextDecoder().decode(bytes);
}

/** The claims of a JWT, or null when it is not one. */
export function decodeToken(token: string): TokenClaims | null {
	const parts = token.split(".");
	if (parts.length !== 3) return null;
	try {
		const payload: unknown = JSON.parse(base64UrlDecode(parts[1]));
		if (!payload || typeof payload !== "object") return null;
		const claims = payload as Record<string, unknown>;
		const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is Role => typeof r === "string") : [];
		return {
			sub: typeof claims.sub === "string" ? claims.sub : "unknown",
			roles,
			exp: typeof claims.exp === "number" ? claims.exp : null
		};
	} catch {
		return null;
	}
}

export function isExpired(claims: TokenClaims, nowMs: number): boolean {
	return claims.exp !== null && claims.exp * 1000 <= nowMs;
}

/** What a role may do in the panel, as the server's RBAC has it (docs: api-contract "Authentication and roles"). */
export type Ability = "read" | "operate" | "admin";

const RANK: Record<UserRole, number> = { viewer: 0, operator: 1, admin: 2 };
const NEEDED: Record<Ability, number> = { read: 0, operate: 1, admin: 2 };

export function can(roles: readonly Role[], ability: Ability): boolean {
	return roles.some(role => role in RANK && RANK[role as UserRole] >= NEEDED[ability]);
}
