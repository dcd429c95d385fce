/**
 * A real OAuth2 / OpenID Connect issuer for tests (oidc-provider, see oidc-issuer.mjs), and what a
 * client of it does: the client-credentials grant at its token endpoint.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";

export type SigningAlg = "RS256" | "PS256" | "ES256";

export interface IssuerClient {
	client_id: string;
	client_secret?: string;
	/** What the IdP administrator gave the client: put in the roles claim of its access tokens. */
	roles?: string | string[];
	/** Another claim than the issuer's usual one for this client's roles. */
	roles_claim?: string;
	alg?: SigningAlg;
	/** Access token lifetime, seconds. */
	ttl?: number;
}

export interface PublicJwk {
	kty: string;
	kid: string;
	alg: SigningAlg;
	[member: string]: unknown;
}

export interface Issuer {
	/** Its identifier (`iss`), also the base of its discovery document. */
	url: string;
	/** The client-credentials grant: an access token for `resource` (default: the issuer's audience). */
	token(clientId: string, options?: { resource?: string }): Promise<string>;
	/** A new key for `alg`, published first and signing from now on; resolves its kid. */
	rotate(alg: SigningAlg): Promise<string>;
	/** Stops publishing (and using) a key. */
	retire(kid: string): Promise<void>;
	/** Any claims, signed with its current key for `alg`: what its token endpoint would not issue. */
	sign(alg: SigningAlg, claims: Record<string, unknown>): Promise<string>;
	/** The published keys, as anyone may fetch them. */
	jwks(): Promise<{ keys: PublicJwk[] }>;
	/** Requests it answered, by path (`/jwks`, `/.well-known/openid-configuration`, `/token`), its own discovery by this helper included. */
	requests(): Promise<Record<string, number>>;
	stop(): Promise<void>;
}

const SCRIPT = path.join(__dirname, "oidc-issuer.mjs");

export async function startIssuer(settings: { audience: string; rolesClaim: string; clients: IssuerClient[] }): Promise<Issuer> {
	const clients = settings.clients.map(c => ({ ...c, client_secret: c.client_secret ?? randomBytes(24).toString("hex") }));
	const secrets = new Map(clients.map(c => [c.client_id, c.client_secret]));
	// oidc-provider warns on stderr (an in-memory adapter, a Node it does not list): kept for failures only.
	const child: ChildProcess = fork(SCRIPT, [JSON.stringify({ ...settings, clients })], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
	const stderr: string[] = [];
	child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
	const exited = new Promise<never>((_, reject) => child.once("exit", code => reject(new Error(`issuer exited (${code}): ${stderr.join("")}`))));
	exited.catch(() => undefined);

	const ready = new Promise<string>(resolve => child.once("message", (m: { type?: string; issuer?: string }) => m.type === "ready" && resolve(m.issuer!)));
	const url = await Promise.race([ready, exited]);
	// As a client would: the token endpoint from the discovery document (once, so that the issuer's
	// request counts afterwards are the resource server's).
	const { token_endpoint: tokenEndpoint } = (await (await fetch(`${url}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };

	let next = 0;
	const command = <T>(cmd: string, args: object = {}): Promise<T> => {
		const id = ++next;
		const answer = new Promise<T>((resolve, reject) => {
			const onMessage = (m: { id?: number; result?: T; error?: string }) => {
				if (m.id !== id) return;
				child.off("message", onMessage);
				if (m.error) reject(new Error(m.error));
				else resolve(m.result as T);
			};
			child.on("message", onMessage);
		});
		child.send({ id, cmd, ...args });
		return Promise.race([answer, exited]);
	};

	return {
		url,
		async token(clientId, options = {}) {
			const body = new URLSearchParams({ grant_type: "client_credentials", scope: "mcp", ...(options.resource ? { resource: options.resource } : {}) });
			const res = await fetch(tokenEndpoint, {
				method: "POST",
				headers: { Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secrets.get(clientId)!)}`).toString("base64")}` },
				body
			});
			const answer = (await res.json()) as { access_token?: string; token_type?: string };
			if (res.status !== 200 || !answer.access_token) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(answer)}`);
			return answer.access_token;
		},
		rotate: alg => command<string>("rotate", { alg }),
		retire: kid => command<void>("retire", { kid }),
		sign: (alg, claims) => command<string>("sign", { alg, claims }),
		jwks: () => command<{ keys: PublicJwk[] }>("jwks"),
		requests: () => command<Record<string, number>>("stats"),
		stop: () =>
			new Promise<void>(resolve => {
				if (child.exitCode !== null || child.signalCode !== null) return resolve();
				child.once("exit", () => resolve());
				child.kill("SIGKILL");
			})
	};
}
