/**
 * A real OAuth2 / OpenID Connect authorization server for the OIDC tests: oidc-provider with the
 * client-credentials grant, JWT access tokens for the resource (audience) a client asks for, and
 * the client's roles in an extra claim. Its signing keys (RS256, PS256, ES256) are generated when
 * it starts. A child process of the test (oidc-provider and its jose are ES modules, which jest's
 * module loader cannot load), driven over IPC:
 *
 *   start: argv[2] = JSON { audience, rolesClaim, clients: [{ client_id, client_secret, roles,
 *          roles_claim?, alg?, ttl? }] }  →  { type: "ready", issuer }
 *   { id, cmd: "rotate", alg }   a new key for alg, published first and signing from now on
 *   { id, cmd: "retire", kid }   the key is no longer published (nor used)
 *   { id, cmd: "jwks" }          the published keys (public)
 *   { id, cmd: "sign", alg, claims }  any claims, signed with the issuer's current key for alg (what a
 *                                its token endpoint would never issue, for the resource server's checks)
 *   { id, cmd: "stats" }         requests served, by path
 *   each answered { id, result } or { id, error }.
 *
 * Keys change without a restart of the issuer's address: a new Provider (same issuer, clients and
 * settings, other keys) takes over the same HTTP server.
 */
import http from "node:http";
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, importJWK, SignJWT } from "jose";
import Provider from "oidc-provider";

const settings = JSON.parse(process.argv[2] ?? "{}");
const ALGORITHMS = ["RS256", "PS256", "ES256"];
/** Private JWKs, newest first within each algorithm (oidc-provider signs with the first key of an alg). */
let keys = [];
let provider;
let handle;
const stats = {};

async function newKey(alg) {
	const { privateKey } = await generateKeyPair(alg, { extractable: true });
	return { ...(await exportJWK(privateKey)), alg, use: "sig", kid: `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}` };
}

function build(issuer) {
	const clients = new Map(settings.clients.map(c => [c.client_id, c]));
	provider = new Provider(issuer, {
		clients: settings.clients.map(c => ({
			client_id: c.client_id,
			client_secret: c.client_secret,
			grant_types: ["client_credentials"],
			redirect_uris: [],
			response_types: [],
			token_endpoint_auth_method: "client_secret_basic"
		})),
		jwks: { keys },
		features: {
			devInteractions: { enabled: false },
			clientCredentials: { enabled: true },
			resourceIndicators: {
				enabled: true,
				defaultResource: () => settings.audience,
				useGrantedResource: () => true,
				// Any resource a client names is granted: the tests ask for the wrong audience on purpose.
				getResourceServerInfo: (_ctx, resource, client) => {
					const c = clients.get(client.clientId);
					return { audience: resource, scope: "mcp", accessTokenFormat: "jwt", accessTokenTTL: c.ttl ?? 3600, jwt: { sign: { alg: c.alg ?? "RS256" } } };
				}
			}
		},
		// The roles an administrator gives the client at the IdP, in the claim the resource server reads.
		ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600 },
		extraTokenClaims: (ctx, token) => {
			const c = clients.get(token.clientId ?? ctx.oidc.client?.clientId);
			return c?.roles === undefined ? undefined : { [c.roles_claim ?? settings.rolesClaim]: c.roles };
		}
	});
	provider.on("server_error", (_ctx, err) => console.error("oidc-provider server_error", err));
	handle = provider.callback();
}

const server = http.createServer((req, res) => {
	const path = (req.url ?? "").split("?")[0];
	stats[path] = (stats[path] ?? 0) + 1;
	handle(req, res);
});

const commands = {
	async rotate({ alg }) {
		const key = await newKey(alg);
		keys = [key, ...keys];
		build(provider.issuer);
		return key.kid;
	},
	retire({ kid }) {
		keys = keys.filter(k => k.kid !== kid);
		build(provider.issuer);
		return kid;
	},
	async sign({ alg, claims }) {
		const key = keys.find(k => k.alg === alg);
		return new SignJWT(claims).setProtectedHeader({ alg, typ: "at+jwt", kid: key.kid }).sign(await importJWK(key, alg));
	},
	jwks: () => ({ keys: keys.map(({ kty, crv, x, y, n, e, alg, use, kid }) => ({ kty, crv, x, y, n, e, alg, use, kid })) }),
	stats: () => ({ ...stats })
};

process.on("message", async message => {
	try {
		process.send({ id: message.id, result: await commands[message.cmd](message) });
	} catch (err) {
		process.send({ id: message.id, error: String(err?.stack ?? err) });
	}
});
process.on("disconnect", () => process.exit(0));

keys = await Promise.all(ALGORITHMS.map(newKey));
server.listen(0, "127.0.0.1", () => {
	build(`http://127.0.0.1:${server.address().port}`);
	process.send({ type: "ready", issuer: provider.issuer });
});
