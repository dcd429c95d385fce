/**
 * A real outside HTTP agent on loopback: receives deliveries at /task, answers 2xx, then calls back
 * with the callback token as the contract describes. Its behaviour per delivery is scripted.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TaskDelivery } from "../../src/types";

export type AgentScript = (delivery: TaskDelivery) => Promise<void> | void;

export interface HttpAgent {
	url: string;
	deliveries: TaskDelivery[];
	endpoints: { task: string; health: string };
	/** Behaviour for the next deliveries (default: complete with {ok:true}). */
	script: AgentScript;
	/** Status the /task endpoint answers (default 200). */
	deliveryStatus: number;
	close(): Promise<void>;
}

export async function postJson(url: string, token: string, body: unknown): Promise<number> {
	const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
	await res.text();
	return res.status;
}

export const complete = (result: unknown = { ok: true }): AgentScript => d => void postJson(d.callbacks.complete, d.callback_token, { result });
export const fail = (error = "boom", retryable = true): AgentScript => d => void postJson(d.callbacks.fail, d.callback_token, { error, retryable });
export const silent: AgentScript = () => undefined;

/** `tls`: serve HTTPS with this key and certificate instead of HTTP. */
export async function startHttpAgent(options: { tls?: https.ServerOptions } = {}): Promise<HttpAgent> {
	const agent: HttpAgent = {
		url: "",
		deliveries: [],
		endpoints: { task: "", health: "" },
		script: complete(),
		deliveryStatus: 200,
		close: async () => undefined
	};
	const handler: http.RequestListener = (req, res) => {
		if (req.url === "/health") return void res.end("ok");
		let body = "";
		req.on("data", chunk => (body += chunk));
		req.on("end", () => {
			res.statusCode = agent.deliveryStatus;
			res.end();
			if (agent.deliveryStatus >= 300) return;
			const delivery = JSON.parse(body) as TaskDelivery;
			agent.deliveries.push(delivery);
			setImmediate(() => void agent.script(delivery));
		});
	};
	const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	agent.url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
	agent.endpoints = { task: `${agent.url}/task`, health: `${agent.url}/health` };
	agent.close = () => new Promise(resolve => server.close(() => resolve()));
	return agent;
}
