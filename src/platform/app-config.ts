/** The typed config travels in `broker.metadata.config`, set by `brokerOptions` (see broker-options.ts). */
import type { ServiceBroker } from "moleculer";
import { loadConfig, type AppConfig, type EnvConfig } from "./config";
import { resolveSecrets } from "./secrets";

function carried(broker: ServiceBroker): EnvConfig | AppConfig {
	const metadata = broker.metadata as { config?: EnvConfig | AppConfig };
	if (!metadata.config) metadata.config = resolveSecrets(loadConfig(process.env));
	return metadata.config;
}

/** This node's settings, whatever secrets it holds (agent nodes hold fewer). */
export function nodeConfig(broker: ServiceBroker): EnvConfig {
	return carried(broker);
}

/** The configuration of a node that runs the server's services: its secrets are known. */
export function appConfig(broker: ServiceBroker): AppConfig {
	const config = carried(broker);
	if (!("secretsGenerated" in config) || !config.secrets.jwtSecret || !config.secrets.apiKey)
		throw new Error("This node was started without its secrets resolved (resolveSecrets): it cannot run the server's services");
	return config as AppConfig;
}
