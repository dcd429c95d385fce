/**
 * SIGHUP re-reads certificates without dropping a connection. Each part that holds some says how it
 * re-reads them, for its node's configuration: the gateway while it listens (`setSecureContext`: new
 * handshakes get the new certificate, open connections keep theirs), the egress policy (a new
 * connector with OUTBOUND_CA_FILE for new outbound connections). The NATS client reads its files at
 * every (re)connect by itself, so a SIGHUP only says so.
 *
 * One process listener serves every broker of the process (tests, benchmarks), added when the first
 * node with a TLS file starts and removed when the last one stops. A node without any keeps Node's
 * default for SIGHUP: it ends.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import type { EnvConfig } from "./config";
import { transporterKind } from "./transporter";

type Reload = () => void;

const reloadsByConfig = new WeakMap<object, Map<string, Reload>>();
const nodes = new Set<Reload>();
const onSighup = () => {
	for (const reloadNode of [...nodes]) reloadNode();
};

/** On SIGHUP, `reload` re-reads what `variable` names for the node of `config`; the returned function ends that. */
export function onCertificateReload(config: object, variable: string, reload: Reload): () => void {
	let reloads = reloadsByConfig.get(config);
	if (!reloads) reloadsByConfig.set(config, (reloads = new Map()));
	reloads.set(variable, reload);
	return () => {
		if (reloads.get(variable) === reload) reloads.delete(variable);
	};
}

export function certificateReloadMiddleware(config: EnvConfig): Middleware {
	let reloadNode: Reload | undefined;
	return {
		name: "CertificateReload",
		async started(broker: ServiceBroker) {
			const { certFile, outboundCaFile, transporterCaFile, transporterCertFile } = config.tls;
			if (!certFile && !outboundCaFile && !transporterCaFile && !transporterCertFile) return;
			const logger = broker.getLogger("tls");
			reloadNode = () => {
				for (const [variable, reload] of reloadsByConfig.get(config) ?? []) {
					try {
						reload();
						logger.info({ variable }, "SIGHUP: certificates re-read, used from the next connection on");
					} catch (err) {
						logger.error({ variable, err: (err as Error).message }, "SIGHUP: certificates not re-read, the previous ones stay in use");
					}
				}
				if (transporterCaFile || transporterCertFile)
					logger.info(
						transporterKind(config.transporter) === "nats"
							? "SIGHUP: the NATS client reads TRANSPORTER_TLS_* again at its next reconnect; its open connection keeps going as it is"
							: "SIGHUP: TRANSPORTER_TLS_* are read at start only for amqps:// and rediss://: restart the node to use new files"
					);
			};
			if (nodes.size === 0) process.on("SIGHUP", onSighup);
			nodes.add(reloadNode);
		},
		async stopped() {
			if (!reloadNode) return;
			nodes.delete(reloadNode);
			reloadNode = undefined;
			if (nodes.size === 0) process.off("SIGHUP", onSighup);
		}
	};
}
