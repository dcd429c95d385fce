/*
 * A Moleculer agent node for fault tests, run as a separate process (`node slow-agent-node.js`):
 * built from the compiled agent mixin, it holds every task until it is killed.
 */
const { ServiceBroker } = require("moleculer");
const { agentMixin } = require("../../dist/mixins/agent.mixin");
const { brokerOptions } = require("../../dist/src/platform/broker-options");
const { loadConfig } = require("../../dist/src/platform/config");

const broker = new ServiceBroker(brokerOptions(loadConfig(process.env, "agent")));
broker.createService({
	name: "slow-agent",
	mixins: [agentMixin({ name: process.env.AGENT_NAME, capabilities: process.env.AGENT_CAPABILITIES.split(","), concurrency: 1 })],
	methods: {
		handleTask(task) {
			console.log(JSON.stringify({ took: task.task_id }));
			return new Promise(() => undefined);
		}
	}
});
broker.start().then(() => console.log(JSON.stringify({ started: broker.nodeID })));
