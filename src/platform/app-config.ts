/** The typed config travels in `broker.metadata.config`, set by `moleculer.config.ts` (or a test). */
import type { ServiceBroker } from "moleculer";
import { loadConfig, type AppConfig } from "./config";

export function appConfig(broker: ServiceBroker): AppConfig {
	const metadata = broker.metadata as { config?: AppConfig };
	if (!metadata.config) metadata.config = loadConfig(process.env);
	return metadata.config;
}
