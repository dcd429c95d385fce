/**
 * Structured logs as `brokerOptions` configures them: secrets redacted at any depth, and the
 * request id of a call in every line it causes, across calls and events started without `ctx`.
 */
import { Writable } from "node:stream";
import { ServiceBroker, type Context, type Service } from "moleculer";
import { brokerOptions, REDACTED_PATHS } from "../../src/platform/broker-options";
import { currentRequestId, eventOptionsWithScopeRequestId, runWithRequestId, withScopeRequestId } from "../../src/platform/middlewares/request-context";
import { testConfig } from "../support/broker";

type LogLine = Record<string, unknown> & { msg?: string; request_id?: string; mod?: string };

function capturingBroker(env: Record<string, string> = {}) {
	const lines: LogLine[] = [];
	const raw: string[] = [];
	const sink = new Writable({
		write(chunk, _enc, done) {
			for (const text of String(chunk).split("\n").filter(Boolean)) {
				raw.push(text);
				lines.push(JSON.parse(text) as LogLine);
			}
			done();
		}
	});
	const options = brokerOptions(testConfig({ LOG_LEVEL: "debug", ...env }));
	const logger = options.logger as unknown as { options: { pino: { destination?: unknown } } };
	logger.options.pino.destination = sink;
	return { broker: new ServiceBroker(options), lines, raw };
}

describe("redaction", () => {
	test("credentials are censored at the top of a line and one or two levels down", async () => {
		const { broker, raw } = capturingBroker();
		const svc = broker.createService({ name: "leaky" }) as Service;
		await broker.start();
		try {
			svc.logger.info({ authorization: "Bearer SECRET-1", token: "SECRET-2", api_key: "SECRET-3" }, "top level");
			svc.logger.info({ headers: { authorization: "Bearer SECRET-4", "x-api-key": "SECRET-5" } }, "headers");
			svc.logger.info({ req: { headers: { authorization: "Bearer SECRET-6" } }, body: { password: "SECRET-7", callback_token: "SECRET-8" } }, "nested");
			svc.logger.info({ meta: { config: { jwtSecret: "SECRET-9", apiKey: "SECRET-10" } } }, "config");
			const text = raw.join("\n");
			for (let i = 1; i <= 10; i++) expect(text).not.toContain(`SECRET-${i}"`);
			expect(text.match(/\[redacted\]/g)?.length).toBe(10);
		} finally {
			await broker.stop();
		}
	});

	test("every key is covered at three depths", () => {
		expect(REDACTED_PATHS).toEqual(expect.arrayContaining(["token", "*.token", "*.*.token", '["x-api-key"]', '*["x-api-key"]', '*.*["x-api-key"]']));
	});
});

describe("request id in every line a call causes", () => {
	test("action, nested broker.call, broadcast handler: one request id; each module logs it", async () => {
		const { broker, lines } = capturingBroker();
		broker.createService({
			name: "front",
			actions: {
				async go(this: Service, ctx: Context) {
					this.logger.info("front working");
					// Not ctx.call: the scope still carries the id.
					await this.broker.call("back.work", {});
					return ctx.requestID;
				}
			}
		});
		broker.createService({
			name: "back",
			actions: {
				async work(this: Service) {
					this.logger.warn({ step: 1 }, "back working");
					await this.broker.broadcast("thing.done", { ok: true });
					return true;
				}
			}
		});
		let seenInEvent: string | undefined;
		broker.createService({
			name: "listener",
			events: {
				"thing.done"(this: Service, ctx: Context) {
					seenInEvent = ctx.requestID ?? undefined;
					this.logger.info("heard it");
				}
			}
		});
		await broker.start();
		try {
			await broker.call("front.go", {}, { requestID: "req-abc" });
			await new Promise(r => setTimeout(r, 20));
			const tagged = lines.filter(l => l.request_id === "req-abc");
			expect(tagged.map(l => l.msg)).toEqual(expect.arrayContaining(["call front.go", "front working", "call back.work", "back working", "heard it"]));
			expect([...new Set(tagged.map(l => l.svc))]).toEqual(expect.arrayContaining(["front", "back", "listener"]));
			expect(seenInEvent).toBe("req-abc");

			// A call without a request behind it gets its own id, not the last one's.
			lines.length = 0;
			await broker.call("back.work", {});
			const own = lines.find(l => l.msg === "back working")!;
			expect(own.request_id).toEqual(expect.any(String));
			expect(own.request_id).not.toBe("req-abc");
		} finally {
			await broker.stop();
		}
	});

	test("an explicit request_id on a line wins over the scope's", () => {
		runWithRequestId("scope-id", () => {
			expect(currentRequestId()).toBe("scope-id");
			expect(withScopeRequestId(undefined)).toEqual({ requestID: "scope-id" });
			expect(withScopeRequestId({ requestID: "given" })).toEqual({ requestID: "given" });
			expect(withScopeRequestId({ timeout: 5 })).toEqual({ timeout: 5, requestID: "scope-id" });
			expect(eventOptionsWithScopeRequestId("group-a")).toEqual({ groups: "group-a", requestID: "scope-id" });
			expect(eventOptionsWithScopeRequestId(["a", "b"])).toEqual({ groups: ["a", "b"], requestID: "scope-id" });
			expect(eventOptionsWithScopeRequestId(undefined)).toEqual({ requestID: "scope-id" });
		});
		expect(currentRequestId()).toBeUndefined();
		expect(withScopeRequestId(undefined)).toBeUndefined();
		expect(eventOptionsWithScopeRequestId("g")).toBe("g");
	});
});
