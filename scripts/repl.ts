/**
 * `npm run repl`: the Moleculer REPL with the operator commands of src/platform/repl-commands.ts.
 *
 * With TRANSPORTER set, the REPL is one more node of the cluster (node id `repl-<host>-<pid>`):
 * it runs no service of its own and calls the cluster's. Without TRANSPORTER there is no cluster
 * to join, so it runs the services itself (every `*.service.js` beside this build, or those named
 * in SERVICES), on DATA_DIR, like `npm start` would: a working REPL on a laptop.
 *
 * Piped input (`printf 'agents\n' | npm run repl`) works: commands run one after another, each
 * to its end, and the process exits when the input ends and the last command has finished.
 * (Node's REPL alone would start every piped line at once and exit at end of input while
 * commands are still running; see `serialize` below.)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { REPLServer } from "node:repl";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { brokerOptions } from "../src/platform/broker-options";
import { loadConfig, type AppConfig } from "../src/platform/config";
import { replCommands } from "../src/platform/repl-commands";
import { resolveSecrets } from "../src/platform/secrets";
import { redactedUrl } from "../src/platform/transporter";

const SERVICE_SUFFIX = `.service${path.extname(__filename)}`;

function say(line: string) {
	process.stdout.write(`${line}\n`);
}

/** The services a local (transporter-less) REPL runs: SERVICEDIR or ../services beside this file, filtered by SERVICES. */
function localServiceFiles(): string[] {
	const dir = process.env.SERVICEDIR ? path.resolve(process.env.SERVICEDIR) : path.resolve(__dirname, "../services");
	const wanted = process.env.SERVICES?.split(",").map(s => s.trim()).filter(Boolean);
	if (wanted?.length) return wanted.map(name => path.join(dir, name.endsWith(SERVICE_SUFFIX) ? name : `${name}${SERVICE_SUFFIX}`));
	if (!fs.existsSync(dir)) return [];
	return fs.readdirSync(dir).filter(f => f.endsWith(SERVICE_SUFFIX)).sort().map(f => path.join(dir, f));
}

/**
 * Make the REPL run one command at a time, and finish the running ones before it exits.
 * Node's REPL calls `eval` for each input line as it arrives, without waiting for the previous
 * (asynchronous) one; with a terminal a person waits for the answer, but piped lines all arrive
 * at once. And at end of input it emits `exit` at once, on which moleculer-repl stops the broker
 * and exits: the commands still running would be cut off. So: `eval` is chained, and `exit`
 * waits for the chain.
 */
function serialize(server: REPLServer, broker: ServiceBroker) {
	const evaluate = server.eval.bind(server);
	let chain: Promise<void> = Promise.resolve();
	// `eval` is read-only in the typings, but REPLServer calls `this.eval` for every line.
	(server as { eval: REPLServer["eval"] }).eval = ((cmd, context, file, callback) => {
		chain = chain.then(
			() =>
				new Promise<void>(resolve => {
					try {
						evaluate(cmd, context, file, (...result: unknown[]) => {
							resolve();
							(callback as (...args: unknown[]) => void)(...result);
						});
					} catch (err) {
						resolve();
						callback(err as Error, undefined);
					}
				})
		);
	}) as REPLServer["eval"];
	server.removeAllListeners("exit");
	server.on("exit", () => {
		void chain.then(async () => {
			await broker.stop();
			process.exit(0);
		});
	});
}

async function main() {
	// The REPL shares the terminal with the logger: only warnings and errors unless LOG_LEVEL says otherwise.
	const loaded = loadConfig({ ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" });
	const base = resolveSecrets(loaded);
	const config: AppConfig = { ...base, nodeId: `repl-${os.hostname()}-${process.pid}` };
	const options: BrokerOptions = {
		...brokerOptions(config),
		replOptions: { delimiter: "mcp $", customCommands: replCommands() }
	};
	const broker = new ServiceBroker(options);

	let local: string[] = [];
	if (!config.transporter) {
		local = localServiceFiles();
		for (const file of local) broker.loadService(file);
	}

	try {
		await broker.start();
	} catch (err) {
		process.stderr.write(`repl: the broker did not start: ${(err as Error).message}\n`);
		await broker.stop().catch(() => undefined);
		process.exit(1);
	}

	if (config.transporter) {
		say(`MCP REPL: node ${config.nodeId} joined ${redactedUrl(config.transporter)} (namespace ${config.broker.namespace}).`);
		await broker.waitForServices(["agents"], 5000).catch(() =>
			say("No node of this cluster runs the 'agents' service yet: commands fail until one joins.")
		);
	} else {
		const names = local.map(f => path.basename(f, SERVICE_SUFFIX));
		say(`MCP REPL: no TRANSPORTER, running ${names.length ? names.join(", ") : "no services"} in this process on ${config.storage === "nedb" ? config.dataDir : config.storage}.`);
		if (config.storage === "nedb")
			say("Do not run it beside `npm start` on the same DATA_DIR; set TRANSPORTER on both to make the REPL join that server.");
	}
	if (!loaded.secrets.jwtSecret) say(`Tokens are signed with the development secret in ${config.dataDir}/.secrets.json.`);
	say("Commands: agents, tasks, runs, drain, cancel, retry, token (and Moleculer's: call, nodes, services, ...). Type `help`.");

	const server = broker.repl() as unknown as REPLServer | undefined;
	if (!server) {
		await broker.stop();
		process.exit(1);
	}
	serialize(server, broker);

	const stop = () => void broker.stop().finally(() => process.exit(0));
	process.once("SIGTERM", stop);
}

main().catch(err => {
	process.stderr.write(`repl: ${(err as Error).message}\n`);
	process.exit(1);
});
