/**
 * The verifier remembers the tokens it verified: a repeat is answered from memory, but never a
 * token with other bytes (a forged signature), never one past its expiry, and never one whose
 * principal a caller changed.
 */
import { createTokenVerifier } from "../../src/platform/verify-token";
import { mintToken, TokenError } from "../../src/platform/tokens";

const SECRET = "unit-secret-0123456789abcdef0123";

test("a verified token is remembered; its principal comes as a fresh copy each time", async () => {
	const verifier = createTokenVerifier({ jwtSecret: SECRET });
	const token = mintToken(SECRET, { sub: "ann", roles: ["viewer"], expiresInSec: 60 });
	expect(verifier.cached(token)).toBeUndefined();
	const first = await verifier.verify(token);
	expect(first.principal).toEqual({ sub: "ann", roles: ["viewer"] });
	first.principal.roles.push("admin");
	expect(verifier.cached(token)?.principal).toEqual({ sub: "ann", roles: ["viewer"] });
	expect((await verifier.verify(token)).principal.roles).toEqual(["viewer"]);
});

test("the same claims with another signature are verified afresh, and refused", async () => {
	const verifier = createTokenVerifier({ jwtSecret: SECRET });
	const token = mintToken(SECRET, { sub: "ann", roles: ["viewer"], expiresInSec: 60 });
	await verifier.verify(token);
	const [header, payload] = token.split(".");
	const forged = `${header}.${payload}.${Buffer.from("not the signature").toString("base64url")}`;
	expect(verifier.cached(forged)).toBeUndefined();
	await expect(verifier.verify(forged)).rejects.toThrow(TokenError);
	const admin = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), roles: ["admin"] })).toString("base64url")}.${token.split(".")[2]}`;
	await expect(verifier.verify(admin)).rejects.toThrow(TokenError);
});

test("a remembered token past its expiry is refused as expired", async () => {
	const verifier = createTokenVerifier({ jwtSecret: SECRET });
	const token = mintToken(SECRET, { sub: "ann", roles: ["viewer"], expiresInSec: 1 });
	await verifier.verify(token);
	await new Promise(r => setTimeout(r, 2100));
	expect(verifier.cached(token)).toBeUndefined();
	await expect(verifier.verify(token)).rejects.toThrow("Token expired");
});

test("a burst with one new token shares its verification; a refused token is checked again each time", async () => {
	const verifier = createTokenVerifier({ jwtSecret: SECRET });
	const token = mintToken(SECRET, { sub: "ann", roles: ["viewer"], expiresInSec: 60 });
	const all = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(token)));
	expect(new Set(all.map(v => v.expiresAt)).size).toBe(1);
	await expect(verifier.verify("garbage")).rejects.toThrow(TokenError);
	await expect(verifier.verify("garbage")).rejects.toThrow(TokenError);
});
