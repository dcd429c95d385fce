/**
 * The agent swarm of the registry-scale benchmark, in its own process (its own Moleculer node over
 * the transporter) so that sending thousands of heartbeats does not share an event loop with the
 * core node being measured. Forked by `cluster-scale.ts` with SWARM_AGENTS; talks over IPC:
 *   → { type: "registered", agents, ms } once every agent is registered
 *   ← { type: "heartbeat", seconds }: heartbeat each agent once a second for that long
 *   → { type: "heartbeats", ...SwarmHeartbeatResult } when done
 * The agents have capability "none" and no node_id: the dispatcher never offers them a task, and
 * this node leaving does not take 2,000 agents offline at the end of the run.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ServiceBroker } from "moleculer";
import { brokerOptions } from "../src/platform/broker-options";
import { loadConfig } from "../src/platform/config";
import { resolveSecrets } from "../src/platform/secrets";
import type { HeartbeatAnswer, RegisteredAgent } from "../src/types";

export interface SwarmHeartbeatResult {
	/** Heartbeats due by the schedule. */
	due: number;
	sent: number;
	acked: number;
	failed: number;
	/** Due while the agent's previous heartbeat was still unanswered: not sent, so a slow registry is not buried. */
	skipped: number;
	seconds: number;
	ackedPerSec: number;
	/** Round trip of one heartbeat, ms. */
	p50: number;
	p99: number;
	max: number;
	firstError?: string;
}

export type SwarmParentMessage = { type: "heartbeat"; seconds: number };
export type SwarmChildMessage =
	| { type: "registered"; agents: number; ms: number }
	| ({ type: "heartbeats" } & SwarmHeartbeatResult)
	| { type: "failed"; error: string };

export const REGISTER_IN_FLIGHT = 50;
const TICK_MS = 5;
/** After the window, unanswered heartbeats get this long before they count as failed. */
const DRAIN_MS = 10_000;

function send(message: SwarmChildMessage): void {
	process.send?.(message);
}

function percentileOf(sorted: Float64Array, p: number): number {
	return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

interface SwarmAgent {
	id: string;
	/** Presented with every beat, as an agent node does, and replaced by the renewed one it is answered. */
	token: string;
}

async function registerAll(broker: ServiceBroker, count: number): Promise<SwarmAgent[]> {
	const ids = new Array<SwarmAgent>(count);
	let next = 0;
	await Promise.all(
		Array.from({ length: REGISTER_IN_FLIGHT }, async () => {
			for (let index = next++; index < count; index = next++) {
				const agent = await broker.call<RegisteredAgent, object>("agents.register", {
					name: `reg-${index}`,
					type: "worker",
					capabilities: ["none"]
				});
				ids[index] = { id: agent.id, token: agent.token };
			}
		})
	);
	return ids;
}

/**
 * Beat k goes to agent k mod N at k × (1000 / N) ms: every agent once a second, spread evenly over
 * the second rather than in one burst, as independent agents would be.
 */
async function heartbeatAll(broker: ServiceBroker, ids: SwarmAgent[], seconds: number): Promise<SwarmHeartbeatResult> {
	const windowMs = seconds * 1000;
	const beatSpacingMs = 1000 / ids.length;
	const inFlight = new Uint8Array(ids.length);
	const roundTrips: number[] = [];
	let due = 0;
	let sent = 0;
	let acked = 0;
	let failed = 0;
	let skipped = 0;
	let firstError: string | undefined;
	const pending = new Set<Promise<void>>();

	const beat = (agentIndex: number): void => {
		if (inFlight[agentIndex]) {
			skipped++;
			return;
		}
		inFlight[agentIndex] = 1;
		sent++;
		const sentAt = performance.now();
		const call = broker
			.call<HeartbeatAnswer, { id: string }>("agents.heartbeat", { id: ids[agentIndex].id }, { meta: { token: ids[agentIndex].token } })
			.then(
				answer => {
					ids[agentIndex].token = answer.token;
					acked++;
					roundTrips.push(performance.now() - sentAt);
				},
				(err: Error) => {
					failed++;
					firstError ??= err.message;
				}
			)
			.finally(() => {
				inFlight[agentIndex] = 0;
				pending.delete(call);
			});
		pending.add(call);
	};

	const start = performance.now();
	for (;;) {
		const elapsed = performance.now() - start;
		const dueNow = Math.min(Math.floor(elapsed / beatSpacingMs), Math.round(windowMs / beatSpacingMs));
		for (; due < dueNow; due++) beat(due % ids.length);
		if (elapsed >= windowMs) break;
		await sleep(TICK_MS);
	}
	const ackedBy = performance.now();
	const windowAcked = acked;
	await Promise.race([Promise.allSettled([...pending]), sleep(DRAIN_MS)]);
	const sorted = Float64Array.from(roundTrips).sort();
	const elapsedSeconds = (ackedBy - start) / 1000;
	return {
		due,
		sent,
		acked,
		failed: failed + pending.size,
		skipped,
		seconds: elapsedSeconds,
		ackedPerSec: windowAcked / elapsedSeconds,
		p50: percentileOf(sorted, 50),
		p99: percentileOf(sorted, 99),
		max: sorted.length ? sorted[sorted.length - 1] : NaN,
		firstError
	};
}

async function main(): Promise<void> {
	const count = Number(process.env.SWARM_AGENTS ?? 2000);
	const broker = new ServiceBroker(brokerOptions(resolveSecrets(loadConfig(process.env))));
	process.on("disconnect", () => void broker.stop().then(() => process.exit(0)));
	await broker.start();
	await broker.waitForServices(["agents"], 30_000);
	const registerStart = performance.now();
	const ids = await registerAll(broker, count);
	send({ type: "registered", agents: ids.length, ms: performance.now() - registerStart });
	process.on("message", (message: SwarmParentMessage) => {
		if (message.type !== "heartbeat") return;
		heartbeatAll(broker, ids, message.seconds).then(
			result => send({ type: "heartbeats", ...result }),
			(err: Error) => send({ type: "failed", error: err.message })
		);
	});
}

if (require.main === module)
	main().catch((err: Error) => {
		send({ type: "failed", error: err.stack ?? err.message });
		process.exit(1);
	});
