/**
 * NATS decentralized auth without `nsc`: an operator, an account and users as nkeys (the `nkeys`
 * that the `nats` client ships), their JWTs signed here as nats-server expects them (header
 * `ed25519-nkey`, the issuer's signature over `header.payload`), a server config that trusts the
 * operator and preloads the account, and `.creds` files as `nsc` writes them.
 */
import { createHash } from "node:crypto";
import { nkeys } from "nats";

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64url = (data: string | Uint8Array) => Buffer.from(data).toString("base64url");

/** RFC 4648 base32 without padding, as NATS JWT ids are. */
function base32(bytes: Uint8Array): string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	let bits = 0;
	let value = 0;
	let out = "";
	for (const byte of bytes) {
		value = (value << 8) | byte;
		bits += 8;
		while (bits >= 5) {
			out += alphabet[(value >>> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
	return out;
}

function signJwt(issuer: KeyPair, claims: Record<string, unknown>): string {
	const header = b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
	const body: Record<string, unknown> = { ...claims, iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey() };
	body.jti = base32(createHash("sha256").update(JSON.stringify(body)).digest());
	const payload = b64url(JSON.stringify(body));
	return `${header}.${payload}.${b64url(issuer.sign(new TextEncoder().encode(`${header}.${payload}`)))}`;
}

const UNLIMITED_ACCOUNT = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
const UNLIMITED_USER = { pub: {}, sub: {}, subs: -1, data: -1, payload: -1 };

function accountJwt(operator: KeyPair, account: KeyPair, name: string): string {
	return signJwt(operator, { sub: account.getPublicKey(), name, nats: { type: "account", version: 2, limits: UNLIMITED_ACCOUNT } });
}

/** A `.creds` file: the user's JWT, then its seed. */
function credsFile(account: KeyPair, name: string): string {
	const user = nkeys.createUser();
	const jwt = signJwt(account, { sub: user.getPublicKey(), name, nats: { type: "user", version: 2, ...UNLIMITED_USER } });
	const seed = new TextDecoder().decode(user.getSeed());
	return [
		"-----BEGIN NATS USER JWT-----", jwt, "------END NATS USER JWT------", "",
		"************************* IMPORTANT *************************",
		"NKEY Seed printed below can be used to sign and prove identity.", "",
		"-----BEGIN USER NKEY SEED-----", seed, "------END USER NKEY SEED------", ""
	].join("\n");
}

export interface OperatorSetup {
	/** nats-server config: trust the operator, know its account. */
	config: string;
	/** A user of that account. */
	creds: string;
	/** A user of an account the server does not know (signed by another operator). */
	strangerCreds: string;
}

export function operatorSetup(): OperatorSetup {
	const operator = nkeys.createOperator();
	const account = nkeys.createAccount();
	const operatorJwt = signJwt(operator, { sub: operator.getPublicKey(), name: "mcp-operator", nats: { type: "operator", version: 2 } });
	const config = ["operator: " + operatorJwt, "resolver: MEMORY", "resolver_preload: {", `  ${account.getPublicKey()}: ${accountJwt(operator, account, "mcp")}`, "}", ""].join("\n");
	const strangerAccount = nkeys.createAccount();
	return { config, creds: credsFile(account, "mcp-node"), strangerCreds: credsFile(strangerAccount, "stranger") };
}

/** A bare user nkey: the server config that lets its public key in, and its seed (what an nkey file holds). */
export function nkeyUser(): { config: string; seed: string } {
	const user = nkeys.createUser();
	return { config: `authorization: {\n  users: [ { nkey: ${user.getPublicKey()} } ]\n}\n`, seed: new TextDecoder().decode(user.getSeed()) };
}
