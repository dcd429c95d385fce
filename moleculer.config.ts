/**
 * Broker configuration for moleculer-runner (`npm start`): the environment is read once into the
 * typed config, secrets resolved, and the same `brokerOptions` every other entry point uses applied.
 */
import { brokerOptions } from "./src/platform/broker-options";
import { loadConfig } from "./src/platform/config";
import { resolveSecrets } from "./src/platform/secrets";

const options = brokerOptions(resolveSecrets(loadConfig(process.env)));

// moleculer-runner overwrites each broker option that has a same-named environment variable once it
// has loaded this file: TRANSPORTER would replace the transporter options built above (NATS token,
// creds, TLS) with the bare URL. It has been read into the config, so it leaves the environment here.
delete process.env.TRANSPORTER;

export default options;
