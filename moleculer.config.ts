/**
 * Broker configuration for moleculer-runner (`npm start`): the environment is read once into the
 * typed config, secrets resolved, and the same `brokerOptions` every other entry point uses applied.
 */
import { brokerOptions } from "./src/broker-options";
import { loadConfig } from "./src/config";
import { resolveSecrets } from "./src/secrets";

export default brokerOptions(resolveSecrets(loadConfig(process.env)));
