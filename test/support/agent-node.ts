/**
 * A Moleculer agent node in this process, configured as `npm run agent` configures one: the agent
 * role's config from an explicit environment (API_KEY, never JWT_SECRET), our broker options, and a
 * service made an agent by the agent mixin that answers every task with `{ ok: true }`.
 */
import { randomBytes } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { agentMixin, type AgentThis } from "../../mixins/agent.mixin";
import { brokerOptions } from "../../src/platform/broker-options";
import { loadConfig } from "../../src/platform/config";
import { tempDir, TEST_SECRETS } from "./broker";

export interface AgentNode {
	broker: ServiceBroker;
	nodeID: string;
}

export async function startAgentNode(name: string, capabilities: string[], env: Record<string, string>): Promise<AgentNode> {
	const nodeID = `${name}-${randomBytes(3).toString("hex")}`;
	const config = loadConfig({ API_KEY: TEST_SECRETS.API_KEY, DATA_DIR: tempDir(), LOG_LEVEL: "warn", NODE_ID: nodeID, ...env }, "agent");
	if (config.secrets.jwtSecret) throw new Error("an agent node holds no JWT_SECRET");
	const broker = new ServiceBroker({ ...brokerOptions(config), nodeID });
	broker.createService({
		name: `${name}-agent`,
		mixins: [agentMixin({ name, capabilities })],
		methods: {
			async handleTask(this: AgentThis) {
				return { ok: true };
			}
		}
	});
	await broker.start();
	return { broker, nodeID };
}
