/**
 * Broker configuration for moleculer-runner (`npm start`): the environment is read once into the
 * typed config, secrets resolved, and the same `brokerOptions` every other entry point uses applied.
 */
import { brokerOptions } from "./src/platform/broker-options";
import { loadConfig } from "./src/platform/config";
import { resolveSecrets } from "./src/platform/secrets";

export default brokerOptions(resolveSecrets(loadConfig(process.env)));
