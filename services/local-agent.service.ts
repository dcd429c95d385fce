/**
 * LOCAL_AGENT (the development default): this node also runs the reference agent, in its own
 * process, so `npm start` alone can run the six-stage pipeline from the panel. It is an agent like
 * any other: it registers with the API key, gets its tasks by signed delivery, and works only
 * inside AGENT_DATA_ROOT, where the example sample.csv is put for a first run.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Service } from "moleculer";
import { prepareDataRoot } from "../agents/data-root";
import { executeStage } from "../agents/stage-worker";
import { agentMixin, type AgentTask, type AgentThis, type ProgressReport } from "../mixins/agent.mixin";
import { nodeConfig } from "../src/platform/app-config";
import type { TypedServiceSchema } from "../src/platform/service-schema";

/** The example data, from the source tree or from the build beside it (dist/services → examples/). */
function sampleCsv(): string | undefined {
	return [path.resolve(__dirname, "../examples/sample.csv"), path.resolve(__dirname, "../../examples/sample.csv")].find(file => fs.existsSync(file));
}

const LocalAgentService: TypedServiceSchema<AgentThis & Service> = {
	name: "local-agent",
	mixins: [
		agentMixin(broker => {
			const config = nodeConfig(broker);
			// Its own name: `npm run agent` beside it registers the default AGENT_NAME.
			return { ...config.agent, name: `local-agent-${os.hostname()}`, enabled: config.localAgent };
		})
	],
	methods: {
		handleTask(this: AgentThis, task: AgentTask, report: ProgressReport) {
			return executeStage(task.type, task.payload, {
				dataRoot: nodeConfig(this.broker).agent.dataRoot,
				report: (progress, message) => void report(progress, message)
			});
		}
	},
	async started(this: AgentThis) {
		if (this.agentOptions.enabled === false) return;
		const sample = sampleCsv();
		const root = nodeConfig(this.broker).agent.dataRoot;
		if (sample) await prepareDataRoot(root, sample);
		this.logger.info(`Local reference agent: files in ${root}`);
	}
};

export default LocalAgentService;
