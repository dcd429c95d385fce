/**
 * A Moleculer agent node in this process, configured as `npm run agent` configures one: the agent
 * role's config from an explicit environment (API_KEY, never JWT_SECRET), our broker options, and a
 * service made an agent by the agent mixin that answers every task with `{ ok: true }`, or with what
 * `handle` answers. Every task it was handed is in `handled`, in order, once per delivery.
 */
import { randomBytes } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { agentMixin, type AgentTask, type AgentThis } from "../../mixins/agent.mixin";
import { brokerOptions } from "../../src/platform/broker-options";
import { loadConfig } from "../../src/platform/config";
import { tempDir, TEST_SECRETS } from "./broker";

export interface AgentNode {
	broker: ServiceBroker;
	nodeID: string;
	handled: AgentTask[];
}

export interface AgentNodeOptions {
	/** Tasks at once (default 1). */
	concurrency?: number;
	handle?: (task: AgentTask) => Promise<unknown>;
}

export async function startAgentNode(name: string, capabilities: string[], env: Record<string, string>, options: AgentNodeOptions = {}): Promise<AgentNode> {
	const nodeID = `${name}-${randomBytes(3).toString("hex")}`;
	const config = loadConfig({ API_KEY: TEST_SECRETS.API_KEY, DATA_DIR: tempDir(), LOG_LEVEL: "warn", NODE_ID: nodeID, ...env }, "agent");
	if (config.secrets.jwtSecret) throw new Error("an agent node holds no JWT_SECRET");
	const broker = new ServiceBroker({ ...brokerOptions(config), nodeID });
	const handled: AgentTask[] = [];
	broker.createService({
		name: `${name}-agent`,
		mixins: [agentMixin({ name, capabilities, concurrency: options.concurrency })],
		methods: {
			async handleTask(this: AgentThis, task: AgentTask) {
				handled.push(task);
				return options.handle ? options.handle(task) : { ok: true };
			}
		}
	});
	await broker.start();
	return { broker, nodeID, handled };
}
