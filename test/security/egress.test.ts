/**
 * The egress policy: every URL the server calls (agents' task and health endpoints, webhooks) is
 * judged when a client gives it and again at connect time on the address actually dialled.
 * Over real HTTP against real production-mode servers, real loopback agents and receivers, and a
 * real DNS server on loopback that rebinds a name from a public address to 127.0.0.1.
 */
import { createHmac } from "node:crypto";
import dgram from "node:dgram";
import dns from "node:dns";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError, loadConfig, PRODUCTION_EGRESS_DENY } from "../../src/platform/config";
import { EgressDeniedError, EgressPolicy, failureDetail, mappedIPv4, problemOf, redactUrl, type Lookup } from "../../src/runtime/egress";
import { forEachBounded } from "../../src/runtime/bounded";
import { signBody, verifySignature } from "../../src/runtime/notifications";
import { TEST_SECRETS } from "../support/broker";
import { client, waitFor } from "../support/http";
import { startServer, type TestServer } from "../support/server";

const WEBHOOK_SECRET = "egress-test-webhook-secret-0123456789";
const PRODUCTION = { NODE_ENV: "production", ...TEST_SECRETS, WEBHOOK_SECRET };

// ---------------------------------------------------------------------------------------------
// Small real servers

interface Received {
	method: string;
	url: string;
	headers: http.IncomingHttpHeaders;
	body: string;
}

/** A loopback HTTP server that records every request and connection and answers with `handle`. */
async function startHttp(handle: (req: Received, res: http.ServerResponse) => void | Promise<void> = (_, res) => void res.end("ok")) {
	const requests: Received[] = [];
	let connections = 0;
	const server = http.createServer((req, res) => {
		let body = "";
		req.setEncoding("utf8");
		req.on("data", chunk => (body += chunk));
		req.on("end", () => {
			const received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
			requests.push(received);
			void handle(received, res);
		});
	});
	server.on("connection", () => connections++);
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	return {
		port,
		url: `http://127.0.0.1:${port}`,
		requests,
		connections: () => connections,
		close: () => new Promise<void>(resolve => server.close(() => resolve()))
	};
}
type HttpServer = Awaited<ReturnType<typeof startHttp>>;

/** A tiny DNS server on loopback (UDP): answers A queries with what `answer` says for the name, in turn. */
async function startDns(answer: (name: string, nth: number) => string[]) {
	const socket = dgram.createSocket("udp4");
	const queries: string[] = [];
	socket.on("message", (msg, rinfo) => {
		let offset = 12;
		const labels: string[] = [];
		while (msg[offset] !== 0) {
			labels.push(msg.toString("ascii", offset + 1, offset + 1 + msg[offset]));
			offset += msg[offset] + 1;
		}
		const qtype = msg.readUInt16BE(offset + 1);
		const question = msg.subarray(12, offset + 5);
		const name = labels.join(".").toLowerCase();
		const addresses = qtype === 1 ? answer(name, queries.filter(q => q === name).length) : [];
		if (qtype === 1) queries.push(name);
		const header = Buffer.alloc(12);
		header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
		header.writeUInt16BE(addresses.length ? 0x8180 : 0x8183, 2); // response, recursion available; NXDOMAIN when empty
		header.writeUInt16BE(1, 4);
		header.writeUInt16BE(addresses.length, 6);
		const records = addresses.map(address => {
			const record = Buffer.alloc(16);
			record.writeUInt16BE(0xc00c, 0); // the question's name
			record.writeUInt16BE(1, 2); // A
			record.writeUInt16BE(1, 4); // IN
			record.writeUInt32BE(0, 6); // TTL 0: never cached
			record.writeUInt16BE(4, 10);
			address.split(".").forEach((octet, i) => (record[12 + i] = Number(octet)));
			return record;
		});
		socket.send(Buffer.concat([header, question, ...records]), rinfo.port, rinfo.address);
	});
	await new Promise<void>(resolve => socket.bind(0, "127.0.0.1", resolve));
	const resolver = new dns.Resolver();
	resolver.setServers([`127.0.0.1:${socket.address().port}`]);
	/** The policy's resolver, pointed at this server. */
	const lookup: Lookup = (hostname, _options, callback) =>
		resolver.resolve4(hostname, (err, addresses) => callback(err, err ? [] : addresses.map(address => ({ address, family: 4 }))));
	return { queries, lookup, close: () => new Promise<void>(resolve => socket.close(() => resolve())) };
}

const fields = (res: { body: { error: { details: Array<{ field: string }> } } }) => res.body.error.details.map(d => d.field);

// ---------------------------------------------------------------------------------------------

describe("the policy's rules", () => {
	const policy = (deny: string[], allow: string[] = [], lookup?: Lookup) => new EgressPolicy({ deny, allow }, { lookup });
	const production = policy(PRODUCTION_EGRESS_DENY);

	test("IPv4 and IPv6 CIDRs and single addresses", () => {
		const p = policy(["10.0.0.0/8", "192.0.2.7", "fd00::/8", "2001:db8::1"]);
		expect(p.allowsAddress("10.1.2.3")).toBe(false);
		expect(p.allowsAddress("11.0.0.1")).toBe(true);
		expect(p.allowsAddress("192.0.2.7")).toBe(false);
		expect(p.allowsAddress("192.0.2.8")).toBe(true);
		expect(p.allowsAddress("fd12:3456::1")).toBe(false);
		expect(p.allowsAddress("fe00::1")).toBe(true);
		expect(p.allowsAddress("2001:db8::1")).toBe(false);
		expect(p.allowsAddress("2001:db8::2")).toBe(true);
	});

	test("the production defaults: loopback, link-local, unspecified and multicast, v4 and v6", () => {
		for (const address of ["127.0.0.1", "127.255.0.9", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "239.1.2.3", "ff02::1"])
			expect([address, production.allowsAddress(address)]).toEqual([address, false]);
		for (const address of ["93.184.216.34", "10.0.0.5", "2606:4700::1111", "::2"]) expect([address, production.allowsAddress(address)]).toEqual([address, true]);
	});

	test("IPv4-mapped IPv6 addresses are judged as their IPv4 address, however they are spelled", () => {
		expect(mappedIPv4("::ffff:127.0.0.1")).toBe("127.0.0.1");
		expect(mappedIPv4("::ffff:7f00:1")).toBe("127.0.0.1");
		expect(mappedIPv4("0:0:0:0:0:ffff:a9fe:a9fe")).toBe("169.254.169.254");
		expect(mappedIPv4("::1")).toBeUndefined();
		expect(mappedIPv4("127.0.0.1")).toBeUndefined();
		for (const address of ["::ffff:127.0.0.1", "::ffff:7f00:1", "0:0:0:0:0:ffff:a9fe:a9fe", "::ffff:224.0.0.1"]) expect(production.allowsAddress(address)).toBe(false);
		expect(production.allowsAddress("::ffff:93.184.216.34")).toBe(true);
		// An allowed IPv4 address stays allowed in its mapped form.
		expect(policy(PRODUCTION_EGRESS_DENY, ["127.0.0.1/32"]).allowsAddress("::ffff:127.0.0.1")).toBe(true);
	});

	test("allow wins over deny, for addresses and names", async () => {
		const p = policy([...PRODUCTION_EGRESS_DENY, "internal.example", "*.corp.example"], ["127.0.0.1/32", "ok.corp.example"]);
		expect(p.allowsAddress("127.0.0.1")).toBe(true);
		expect(p.allowsAddress("127.0.0.2")).toBe(false);
		expect(p.allowsAddress("::1")).toBe(false);
		expect(await p.refusal("http://ok.corp.example/x")).toBeUndefined();
		expect(await p.refusal("http://other.corp.example/x")).toMatch(/host the egress policy does not allow/);
		// A name on the allow list is allowed whatever it resolves to.
		const named = policy(PRODUCTION_EGRESS_DENY, ["agents.internal"], (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]));
		expect(await named.refusal("http://agents.internal/x")).toBeUndefined();
		expect(await named.refusal("http://other.internal/x")).toMatch(/resolves to an address/);
	});

	test("host names: exact (any case, trailing dot) and *.suffix for subdomains only", async () => {
		const p = policy(["metadata.google.internal", "*.corp.example"]);
		expect(await p.refusal("http://metadata.google.internal/computeMetadata/v1/")).toMatch(/host/);
		expect(await p.refusal("http://METADATA.google.internal./x")).toMatch(/host/);
		expect(await p.refusal("http://a.b.corp.example/x")).toMatch(/host/);
		expect(await p.refusal("http://corp.example/x")).toBeUndefined();
		expect(await p.refusal("http://notcorp.example/x")).toBeUndefined();
	});

	test("given URLs: literals in any notation, names by what they resolve to, http(s) only", async () => {
		const resolved: Record<string, string[]> = { "public.test": ["93.184.216.34"], "inward.test": ["93.184.216.34", "127.0.0.1"] };
		const lookups: string[] = [];
		const p = policy(PRODUCTION_EGRESS_DENY, [], (host, _o, cb) => {
			lookups.push(host);
			const found = resolved[host];
			if (!found) return cb(Object.assign(new Error("not found"), { code: "ENOTFOUND" }), []);
			cb(null, found.map(address => ({ address, family: 4 })));
		});
		for (const url of ["http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://[::1]:8080/", "http://[::ffff:169.254.169.254]/", "https://169.254.169.254/latest/meta-data/"])
			expect([url, await p.refusal(url)]).toEqual([url, "names an address the egress policy does not allow"]);
		expect(await p.refusal("http://public.test/x")).toBeUndefined();
		// One inward address among several is enough to refuse the name.
		expect(await p.refusal("http://inward.test/x")).toBe("names a host that resolves to an address the egress policy does not allow");
		// A name that does not resolve now is accepted: it is judged again at every connect.
		expect(await p.refusal("http://nowhere.test/x")).toBeUndefined();
		expect(await p.refusal("ftp://93.184.216.34/x")).toBe("must be an http or https URL");
		expect(await p.refusal("file:///etc/passwd")).toBe("must be an http or https URL");
		expect(await p.refusal("http://[bad")).toMatch(/absolute http or https URL/);
		expect(lookups).toEqual(["public.test", "inward.test", "nowhere.test"]);
		// Development denies nothing and resolves nothing.
		const open = policy([], [], () => {
			throw new Error("no lookup expected");
		});
		expect(await open.refusal("http://localhost/x")).toBeUndefined();
		expect(await open.refusedFields({ "endpoints.task": "http://127.0.0.1/x", "endpoints.health": undefined })).toEqual([]);
	});

	test("refusedFields names each refused field the way the contract's 422 does", async () => {
		expect(await production.refusedFields({ "endpoints.task": "http://127.0.0.1/t", "endpoints.status": "http://93.184.216.34/s", "endpoints.health": "http://[::1]/h" })).toEqual([
			{ field: "endpoints.task", message: "The 'endpoints.task' field names an address the egress policy does not allow.", type: "egress" },
			{ field: "endpoints.health", message: "The 'endpoints.health' field names an address the egress policy does not allow.", type: "egress" }
		]);
	});

	test("entries that are neither a CIDR, an IP nor a host name stop the node, naming the variable", () => {
		expect(() => policy(["10.0.0.0/33"])).toThrow(ConfigError);
		expect(() => policy(["10.0.0.0/33"])).toThrow(/EGRESS_DENY/);
		expect(() => policy([], ["not a host!"])).toThrow(/EGRESS_ALLOW/);
		expect(() => policy(["::/129"])).toThrow(/EGRESS_DENY/);
		expect(() => policy(["10.0.0.0/8/1"])).toThrow(/EGRESS_DENY/);
	});

	test("URLs as logged and audited keep neither userinfo nor query", () => {
		expect(redactUrl("https://user:pw@hooks.example.com:8443/a/b?token=abc#f")).toBe("https://hooks.example.com:8443/a/b");
		expect(redactUrl("not a url")).toBe("(not a URL)");
	});

	test("health polls: at most the limit at once, every item done", async () => {
		let running = 0;
		let most = 0;
		const done: number[] = [];
		await forEachBounded(Array.from({ length: 50 }, (_, i) => i), 16, async i => {
			most = Math.max(most, ++running);
			await new Promise(resolve => setTimeout(resolve, 5));
			running--;
			done.push(i);
		});
		expect(most).toBe(16);
		expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
		await forEachBounded([], 16, async () => undefined);
	});
});

describe("PUBLIC_URL", () => {
	const load = (url: string) => loadConfig({ PUBLIC_URL: url, AGENT_DATA_ROOT: "/tmp/mcp-egress-agent-data" });

	test("an absolute http(s) URL, without credentials or query", () => {
		expect(load("https://mcp.example.com/base/").publicUrl).toBe("https://mcp.example.com/base");
		expect(load("http://10.0.0.5:8080").publicUrl).toBe("http://10.0.0.5:8080");
		for (const bad of ["mcp:8080", "/relative", "ftp://mcp.example.com", "https://user:secret@mcp.example.com", "https://mcp.example.com/?x=1"]) {
			let error: unknown;
			try {
				load(bad);
			} catch (err) {
				error = err;
			}
			expect(error).toBeInstanceOf(ConfigError);
			expect((error as ConfigError).variable).toBe("PUBLIC_URL");
			expect((error as Error).message).not.toContain("secret");
		}
	});
});

describe("DNS rebinding is refused at connect time", () => {
	let loopback: HttpServer;
	let dnsServer: Awaited<ReturnType<typeof startDns>>;
	const policies: EgressPolicy[] = [];

	beforeAll(async () => {
		loopback = await startHttp();
		// rebind.test: first a public address (what the check at registration sees), then loopback.
		dnsServer = await startDns((name, nth) => {
			if (name === "rebind.test") return nth === 0 ? ["93.184.216.34"] : ["127.0.0.1"];
			if (name === "mixed.test") return ["93.184.216.34", "127.0.0.1"];
			if (name === "loop.test") return ["127.0.0.1"];
			return [];
		});
	});
	afterAll(async () => {
		for (const p of policies) await p.close();
		await loopback.close();
		await dnsServer.close();
	});
	const make = (allow: string[] = []) => {
		const p = new EgressPolicy({ deny: PRODUCTION_EGRESS_DENY, allow }, { lookup: dnsServer.lookup });
		policies.push(p);
		return p;
	};

	test("a name that passed the check, then resolves to 127.0.0.1: the fetch is refused and loopback receives nothing", async () => {
		const policy = make();
		const url = `http://rebind.test:${loopback.port}/task`;
		expect(await policy.refusal(url)).toBeUndefined();
		const error = await policy.fetch(url, { method: "POST", body: "{}", signal: AbortSignal.timeout(5000) }).then(
			() => undefined,
			err => err as Error & { cause?: unknown }
		);
		expect(error).toBeDefined();
		expect(error!.cause).toBeInstanceOf(EgressDeniedError);
		expect(problemOf(error)).toBe("denied");
		expect(failureDetail(error)).toBe("rebind.test resolved to 127.0.0.1, which the egress policy does not allow");
		expect(dnsServer.queries.filter(q => q === "rebind.test")).toHaveLength(2);
		expect(loopback.connections()).toBe(0);
		expect(loopback.requests).toHaveLength(0);
	});

	test("a name with a public and a loopback address is refused as a whole (no racing to the inward one)", async () => {
		const error = await make().fetch(`http://mixed.test:${loopback.port}/`).catch(err => err);
		expect(problemOf(error)).toBe("denied");
		expect(loopback.connections()).toBe(0);
	});

	test("literals are judged at connect time too, without any lookup", async () => {
		const policy = make();
		for (const url of [`http://127.0.0.1:${loopback.port}/`, `http://[::ffff:127.0.0.1]:${loopback.port}/`]) {
			const error = await policy.fetch(url).catch(err => err);
			expect(problemOf(error)).toBe("denied");
		}
		await expect(policy.fetch("file:///etc/passwd")).rejects.toBeInstanceOf(EgressDeniedError);
		expect(loopback.connections()).toBe(0);
	});

	test("control: with 127.0.0.1/32 allowed, the same resolver reaches the loopback server", async () => {
		const answer = await make(["127.0.0.1/32"]).fetch(`http://loop.test:${loopback.port}/hello`);
		expect(answer).toEqual({ ok: true, status: 200 });
		expect(loopback.requests.map(r => r.url)).toEqual(["/hello"]);
	});
});

describe("a production server", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;

	beforeAll(async () => {
		server = await startServer({ ...PRODUCTION, EGRESS_DENY: "blocked.example.test,*.internal.example.test", HEALTH_CHECK_INTERVAL_MS: "60000" });
		operator = client(server.url, server.token(["operator"], "olive"));
		viewer = client(server.url, server.token(["viewer"], "vic"));
	});
	afterAll(() => server.stop());

	test.each([
		["endpoints.task", "http://127.0.0.1:9/task"],
		["endpoints.task", "http://[::1]:9/task"],
		["endpoints.health", "http://169.254.169.254/latest/meta-data/"],
		["endpoints.task", "http://0.0.0.0:9/task"],
		["endpoints.status", "http://224.0.0.1/status"],
		["endpoints.task", "http://localhost:9/task"],
		["endpoints.task", "http://blocked.example.test/task"],
		["endpoints.health", "http://db.internal.example.test/health"],
		["endpoints.task", "http://[::ffff:127.0.0.1]:9/task"],
		["endpoints.task", "http://2130706433:9/task"]
	])("registering %s = %s: 422 naming the field, nothing stored", async (field, url) => {
		const name = `egress-${Buffer.from(url).toString("hex").slice(0, 24)}`;
		const key = field.split(".")[1];
		const res = await operator.post("/api/v1/agents/register", {
			name, type: "worker", capabilities: ["task-execution"], endpoints: { task: "http://93.184.216.34/task", [key]: url }
		});
		expect(res.status).toBe(422);
		expect(res.body.error.code).toBe("VALIDATION_ERROR");
		expect(fields(res)).toEqual([field]);
		expect(res.body.error.details[0].message).toMatch(/egress policy/);
		const listed = await viewer.get("/api/v1/agents");
		expect(listed.body.agents.map((a: { name: string }) => a.name)).not.toContain(name);
	});

	test("every refused endpoint is named at once", async () => {
		const res = await operator.post("/api/v1/agents/register", {
			name: "egress-many", type: "worker", capabilities: ["task-execution"],
			endpoints: { task: "http://127.0.0.1/t", status: "http://93.184.216.34/s", health: "http://169.254.169.254/h" }
		});
		expect(res.status).toBe(422);
		expect(fields(res).sort()).toEqual(["endpoints.health", "endpoints.task"]);
	});

	test("a webhook to a denied address: 422 naming notification.webhook, no run", async () => {
		const pipeline = await operator.post("/api/v1/pipelines", { name: "egress-hook", description: "d", stages: [{ name: "a", type: "processing", required_capabilities: ["nobody"] }] });
		expect(pipeline.status).toBe(201);
		const id = pipeline.body.pipeline_id as string;
		for (const webhook of ["http://169.254.169.254/latest/meta-data/iam", "http://127.0.0.1:9/hook", "http://blocked.example.test/hook"]) {
			const res = await operator.post(`/api/v1/pipelines/${id}/execute`, { notification: { webhook } });
			expect(res.status).toBe(422);
			expect(fields(res)).toEqual(["notification.webhook"]);
		}
		expect((await viewer.get(`/api/v1/pipelines/${id}`)).body.runs).toEqual([]);
	});
});

describe("a production server without WEBHOOK_SECRET", () => {
	let server: TestServer;

	beforeAll(async () => {
		server = await startServer({ NODE_ENV: "production", ...TEST_SECRETS, EGRESS_ALLOW: "127.0.0.1/32" });
	});
	afterAll(() => server.stop());

	test("refuses a run that names a webhook, saying WEBHOOK_SECRET is required; other runs go ahead", async () => {
		const operator = client(server.url, server.token(["operator"], "olive"));
		const pipeline = await operator.post("/api/v1/pipelines", { name: "no-secret", description: "d", stages: [{ name: "a", type: "processing", required_capabilities: ["nobody"] }] });
		const id = pipeline.body.pipeline_id as string;
		const res = await operator.post(`/api/v1/pipelines/${id}/execute`, { notification: { webhook: "http://127.0.0.1:9/hook" } });
		expect(res.status).toBe(422);
		expect(fields(res)).toEqual(["notification.webhook"]);
		expect(res.body.error.details[0].message).toMatch(/WEBHOOK_SECRET is required/);
		expect((await operator.post(`/api/v1/pipelines/${id}/execute`, { notification: { email: "ops@example.com" } })).status).toBe(202);
	});
});

describe("a production server with EGRESS_ALLOW=127.0.0.1/32", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;
	const servers: HttpServer[] = [];

	const serve = async (handle?: Parameters<typeof startHttp>[0]) => {
		const s = await startHttp(handle);
		servers.push(s);
		return s;
	};
	/** An agent that takes only tasks of type `name` (and of `also`). */
	const register = async (name: string, endpoints: Record<string, string>, also: string[] = []) => {
		const res = await operator.post("/api/v1/agents/register", { name, type: "worker", capabilities: [name, ...also], endpoints });
		expect(res.status).toBe(201);
		return res.body as { id: string; token: string };
	};
	const submit = async (type: string) => {
		const res = await operator.post("/api/v1/tasks", { type, retry_count: 0 });
		expect(res.status).toBe(201);
		return res.body.task_id as string;
	};
	const untilTask = (id: string, status: string) =>
		waitFor(async () => {
			const task = (await viewer.get(`/api/v1/tasks/${id}`)).body;
			return task.status === status ? task : undefined;
		});
	/** An agent that takes every delivery and completes it through its callback. */
	const completing = (result: unknown) => (req: Received, res: http.ServerResponse) => {
		res.end();
		if (req.url !== "/task") return;
		const delivery = JSON.parse(req.body) as { callbacks: { complete: string }; callback_token: string };
		void fetch(delivery.callbacks.complete, {
			method: "POST",
			headers: { "Content-Type": "application/json", Authorization: `Bearer ${delivery.callback_token}` },
			body: JSON.stringify({ result })
		}).then(r => r.text());
	};

	beforeAll(async () => {
		server = await startServer({ ...PRODUCTION, EGRESS_ALLOW: "127.0.0.1/32", HEALTH_CHECK_INTERVAL_MS: "100", HEALTH_CHECK_TIMEOUT_MS: "2000" });
		operator = client(server.url, server.token(["operator"], "olive"));
		viewer = client(server.url, server.token(["viewer"], "vic"));
	});
	afterAll(async () => {
		await server.stop();
		for (const s of servers) await s.close();
	});

	test("a real loopback agent works end to end: registered, health-polled, delivered to, completed", async () => {
		const agentServer = await serve(completing({ rows: 7 }));
		const agent = await register("loop-agent", { task: `${agentServer.url}/task`, health: `${agentServer.url}/health` });
		await waitFor(async () => agentServer.requests.some(r => r.url === "/health"));
		const done = await untilTask(await submit("loop-agent"), "completed");
		expect(done).toMatchObject({ assigned_agent: agent.id, result: { rows: 7 }, error: null });
		expect((await viewer.get(`/api/v1/agents/${agent.id}`)).body.status).toBe("active");
	});

	test("::1 is still denied: only what EGRESS_ALLOW names is let through", async () => {
		const res = await operator.post("/api/v1/agents/register", { name: "v6-loop", type: "worker", capabilities: ["x"], endpoints: { task: "http://[::1]:9/task" } });
		expect(res.status).toBe(422);
		expect(fields(res)).toEqual(["endpoints.task"]);
	});

	test("an endpoint answering 302 is not followed: the delivery fails and the redirect target gets nothing", async () => {
		const target = await serve();
		const redirecting = await serve((_, res) => {
			res.writeHead(302, { Location: `${target.url}/task` });
			res.end();
		});
		await register("redirecting", { task: `${redirecting.url}/task` });
		const failed = await untilTask(await submit("redirecting"), "failed");
		expect(failed.error).toBe("Delivery to the agent's task endpoint failed: it answered with a redirect, which is not followed");
		expect(redirecting.requests.filter(r => r.url === "/task")).toHaveLength(1);
		expect(target.requests).toHaveLength(0);
		expect(target.connections()).toBe(0);
	});

	test("a delivery error as a viewer reads it names neither the URL's credentials nor the status code", async () => {
		const failing = await serve((_, res) => {
			res.statusCode = 500;
			res.end("internal detail the viewer must not see");
		});
		await register("secretive", { task: `http://deliver-user:s3cr3t-pw@127.0.0.1:${failing.port}/task?key=qs-secret` });
		const failed = await untilTask(await submit("secretive"), "failed");
		expect(failed.error).toBe("Delivery to the agent's task endpoint failed: it answered with an error");
		const seen = JSON.stringify({ error: failed.error, logs: failed.logs });
		for (const leak of ["s3cr3t-pw", "deliver-user", "qs-secret", "500", String(failing.port), "internal detail"]) expect(seen).not.toContain(leak);
		// The URL's userinfo went as Basic authorization, never in the request line.
		expect(failing.requests[0].headers.authorization).toBe(`Basic ${Buffer.from("deliver-user:s3cr3t-pw").toString("base64")}`);
		expect(failing.requests[0].url).toBe("/task?key=qs-secret");
	});

	test("an unreachable endpoint says so, without its address", async () => {
		const gone = await startHttp();
		await gone.close();
		await register("gone", { task: `http://127.0.0.1:${gone.port}/task` });
		const failed = await untilTask(await submit("gone"), "failed");
		expect(failed.error).toBe("Delivery to the agent's task endpoint failed: it could not be reached");
		expect(JSON.stringify(failed.logs)).not.toContain(String(gone.port));
	});

	test("the webhook: a real receiver verifies X-MCP-Timestamp/X-MCP-Signature with WEBHOOK_SECRET, and not with JWT_SECRET", async () => {
		const verdicts: Array<{ webhookSecret: boolean; jwtSecret: boolean; independent: boolean }> = [];
		const receiver = await serve((req, res) => {
			const timestamp = req.headers["x-mcp-timestamp"] as string | undefined;
			const signature = req.headers["x-mcp-signature"] as string | undefined;
			verdicts.push({
				webhookSecret: verifySignature(WEBHOOK_SECRET, req.body, signature, timestamp),
				jwtSecret: verifySignature(TEST_SECRETS.JWT_SECRET, req.body, signature, timestamp),
				independent: signature === `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(`${timestamp}.${req.body}`).digest("hex")}`
			});
			res.statusCode = 204;
			res.end();
		});
		const agentServer = await serve(completing({ ok: true }));
		await register("hooked", { task: `${agentServer.url}/task` }, ["processing"]);
		const pipeline = await operator.post("/api/v1/pipelines", { name: "hooked", description: "d", stages: [{ name: "a", type: "processing", required_capabilities: ["hooked"] }] });
		const id = pipeline.body.pipeline_id as string;
		const hook = `http://hook-user:hook-pw@127.0.0.1:${receiver.port}/hook?token=abc`;
		const run = await operator.post(`/api/v1/pipelines/${id}/execute`, { notification: { webhook: hook } });
		expect(run.status).toBe(202);
		await waitFor(async () => verdicts.length > 0);
		expect(verdicts).toEqual([{ webhookSecret: true, jwtSecret: false, independent: true }]);
		expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ run_id: run.body.run_id, status: "completed" });
		// Audited without userinfo or query.
		const admin = client(server.url, server.token(["admin"], "ada"));
		const audit = await waitFor(async () => (await admin.get("/api/v1/audit?action=notification.webhook")).body.entries.find((e: { target: string }) => e.target === run.body.run_id));
		expect(audit).toMatchObject({ result: "success", path: `http://127.0.0.1:${receiver.port}/hook` });
		// The helper signs the same way the receiver checks.
		expect(signBody(WEBHOOK_SECRET, 1, "{}")).toBe(`sha256=${createHmac("sha256", WEBHOOK_SECRET).update("1.{}").digest("hex")}`);
	});
});

describe("health polls", () => {
	let server: TestServer;
	let health: HttpServer;
	let inFlight = 0;
	let most = 0;

	beforeAll(async () => {
		health = await startHttp(async (_, res) => {
			most = Math.max(most, ++inFlight);
			await new Promise(resolve => setTimeout(resolve, 150));
			inFlight--;
			res.end("ok");
		});
		server = await startServer({ ...PRODUCTION, EGRESS_ALLOW: "127.0.0.1/32", HEALTH_CHECK_INTERVAL_MS: "50", HEALTH_CHECK_TIMEOUT_MS: "5000" });
	});
	afterAll(async () => {
		await server.stop();
		await health.close();
	});

	test("run at most 16 at once, however many agents there are", async () => {
		const operator = client(server.url, server.token(["operator"], "olive"));
		for (let i = 0; i < 40; i++) {
			const res = await operator.post("/api/v1/agents/register", {
				name: `polled-${i}`, type: "worker", capabilities: ["x"], endpoints: { health: `${health.url}/health/${i}` }
			});
			expect(res.status).toBe(201);
		}
		await waitFor(async () => new Set(health.requests.map(r => r.url)).size === 40, 15_000);
		expect(most).toBeGreaterThan(1);
		expect(most).toBeLessThanOrEqual(16);
	});
});
