/**
 * A second-process node for the NATS benchmarks: a Moleculer agent whose tasks are no-ops, plus a
 * bare no-op action that measures the raw remote-call rate over the same transporter.
 */
import { ServiceBroker } from "moleculer";
import { agentMixin } from "../mixins/agent.mixin";
import { brokerOptions } from "../src/platform/broker-options";
import { loadConfig } from "../src/platform/config";

const broker = new ServiceBroker(brokerOptions(loadConfig(process.env, "agent")));
broker.createService({
	name: "noop-agent",
	mixins: [agentMixin({ name: process.env.AGENT_NAME ?? "bench-agent", capabilities: ["noop"], concurrency: Number(process.env.AGENT_CONCURRENCY ?? 256) })],
	methods: { handleTask: async () => ({ ok: true }) },
	actions: { ping: { visibility: "public", handler: () => ({ ok: true }) } }
});
void broker.start().then(() => process.send?.({ started: broker.nodeID }));
process.on("disconnect", () => void broker.stop().then(() => process.exit(0)));
