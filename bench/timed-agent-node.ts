/**
 * A second-process agent node whose tasks each take a fixed TASK_WORK_MS of waiting (default 20 ms)
 * with AGENT_CONCURRENCY slots (default 8): a known capacity of concurrency / work per node
 * (400 tasks/s by default) that costs next to no CPU, so on a 2-core machine the cluster benchmark
 * shows how the core scales out over agent nodes rather than how fast agents burn CPU.
 * Takes tasks of type AGENT_CAPABILITY (default "timed"); tells its parent once started.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ServiceBroker } from "moleculer";
import { agentMixin } from "../mixins/agent.mixin";
import { brokerOptions } from "../src/platform/broker-options";
import { loadConfig } from "../src/platform/config";

const taskWorkMs = Number(process.env.TASK_WORK_MS ?? 20);

const broker = new ServiceBroker(brokerOptions(loadConfig(process.env, "agent")));
broker.createService({
	name: "timed-agent",
	mixins: [
		agentMixin({
			name: process.env.AGENT_NAME ?? "timed-agent",
			capabilities: [process.env.AGENT_CAPABILITY ?? "timed"],
			concurrency: Number(process.env.AGENT_CONCURRENCY ?? 8)
		})
	],
	methods: {
		async handleTask() {
			await sleep(taskWorkMs);
			return { ok: true };
		}
	}
});
void broker.start().then(() => process.send?.({ started: broker.nodeID }));
process.on("disconnect", () => void broker.stop().then(() => process.exit(0)));
