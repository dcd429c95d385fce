/**
 * `npm run agent`: an agent node that joins the cluster over TRANSPORTER and runs the reference
 * worker for the six stage types (AGENT_NAME, AGENT_CAPABILITIES, AGENT_CONCURRENCY), on files inside
 * AGENT_DATA_ROOT only, and on S3 objects (AWS_* variables, AWS_ENDPOINT_URL_S3, S3_FORCE_PATH_STYLE).
 */
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { agentMixin, type AgentTask, type AgentThis, type ProgressReport } from "../mixins/agent.mixin";
import { brokerOptions } from "../src/platform/broker-options";
import { loadConfig } from "../src/platform/config";
import { resolveAgentSecrets } from "../src/platform/secrets";
import { prepareDataRoot } from "./data-root";
import { executeStage } from "./stage-worker";

/** The example data beside the build (dist/agents → examples/), as the repository and the image both lay it out. */
const SAMPLE = path.resolve(__dirname, "../../examples/sample.csv");

async function main() {
	const config = resolveAgentSecrets(loadConfig(process.env, "agent"));
	if (!config.secrets.apiKey) {
		console.error("API_KEY is not set: an agent node registers with the cluster's API key (it needs no JWT_SECRET, and never gets one).");
		process.exit(2);
	}
	if (!config.transporter) {
		console.error("TRANSPORTER is not set: an agent node joins a cluster, e.g. TRANSPORTER=nats://127.0.0.1:4222 (or TRANSPORTER=TCP on one machine without NATS).");
		process.exit(2);
	}
	const settings = config.agent;
	const seeded = await prepareDataRoot(settings.dataRoot, SAMPLE);
	const broker = new ServiceBroker({
		...brokerOptions(config),
		nodeID: process.env.NODE_ID?.trim() || `${settings.name}-${process.pid}`
	});
	broker.createService({
		name: "reference-agent",
		mixins: [agentMixin(settings)],
		methods: {
			handleTask(this: AgentThis, task: AgentTask, report: ProgressReport) {
				return executeStage(task.type, task.payload, {
					dataRoot: settings.dataRoot,
					s3: config.s3,
					report: (progress, message) => void report(progress, message)
				});
			}
		}
	});
	await broker.start();
	broker.logger.info(`Data root ${settings.dataRoot}${seeded ? " (sample.csv copied in)" : ""}: the agent reads and writes files there only.`);
	for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void broker.stop().then(() => process.exit(0)));
}

if (require.main === module)
	main().catch(err => {
		console.error(err);
		process.exit(1);
	});
