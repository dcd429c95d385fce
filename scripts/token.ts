/**
 * `npm run token -- --roles operator --sub alice [--expires-in 3600] [--agent-id ID --registered-at ISO]`
 *
 * Prints a JWT signed with JWT_SECRET, read from the environment like the server does: without
 * JWT_SECRET in development it uses (or creates) DATA_DIR/.secrets.json, the same file the server
 * generates its secrets into, so the token is valid for a server started with the same DATA_DIR.
 * Only the token goes to stdout (`npm run --silent token -- ...` to capture it); mistakes go to
 * stderr with exit code 2.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../src/platform/config";
import { TOKEN_ROLES, tokenOptions, UsageError } from "../src/platform/repl-commands";
import { resolveSecrets } from "../src/platform/secrets";
import { mintToken } from "../src/platform/tokens";

const USAGE = `usage: npm run token -- --roles ROLE[,ROLE] --sub NAME [--expires-in SECONDS] [--agent-id ID --registered-at ISO]
  roles: ${TOKEN_ROLES.join(", ")} (agent needs --agent-id; its subject defaults to agent:<id>; the API honours an
  agent token only with the --registered-at of the agent's current registration, its registered_at)
  expires-in: default 3600`;

function main(argv: string[]): number {
	let values: { roles?: string[]; sub?: string; "expires-in"?: string; "agent-id"?: string; "registered-at"?: string; help?: boolean };
	try {
		({ values } = parseArgs({
			args: argv,
			options: {
				roles: { type: "string", short: "r", multiple: true },
				sub: { type: "string", short: "s" },
				"expires-in": { type: "string", short: "e" },
				"agent-id": { type: "string", short: "a" },
				"registered-at": { type: "string" },
				help: { type: "boolean", short: "h" }
			},
			strict: true,
			allowPositionals: false
		}));
	} catch (err) {
		process.stderr.write(`token: ${(err as Error).message}\n${USAGE}\n`);
		return 2;
	}
	if (values.help) {
		process.stdout.write(`${USAGE}\n`);
		return 0;
	}
	try {
		const options = tokenOptions({ roles: values.roles, sub: values.sub, agentId: values["agent-id"], registeredAt: values["registered-at"], expiresIn: values["expires-in"] });
		const loaded = loadConfig(process.env);
		const config = resolveSecrets(loaded);
		if (!loaded.secrets.jwtSecret)
			process.stderr.write(`token: no JWT_SECRET set: signed with the development secret in ${config.dataDir}/.secrets.json\n`);
		process.stdout.write(`${mintToken(config.secrets.jwtSecret, options, config.jwt)}\n`);
		return 0;
	} catch (err) {
		if (err instanceof UsageError) process.stderr.write(`token: ${err.message}\n${USAGE}\n`);
		else if (err instanceof ConfigError) process.stderr.write(`token: configuration error: ${err.message}\n`);
		else process.stderr.write(`token: ${(err as Error).message}\n`);
		return 2;
	}
}

process.exitCode = main(process.argv.slice(2));
