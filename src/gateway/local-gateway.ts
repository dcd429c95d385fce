/** The HTTP server of the gateway (moleculer-web, service "api") on this node, if it runs one. */
import type { Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import type { NodeSettings } from "../platform/config";

export function localGatewayServer(broker: ServiceBroker): Server | undefined {
	return (broker.getLocalService("api") as unknown as { server?: Server } | undefined)?.server;
}

/** The port it listens on (the real one when SERVER_PORT=0); undefined without a listening gateway. */
export function localGatewayPort(broker: ServiceBroker): number | undefined {
	const address = localGatewayServer(broker)?.address();
	return address && typeof address === "object" ? address.port : undefined;
}

/** Its base URL on loopback: https when TLS_CERT_FILE makes the gateway serve HTTPS. */
export function localGatewayUrl(broker: ServiceBroker, config: Pick<NodeSettings, "serverPort" | "tls">): string {
	return `${config.tls.certFile ? "https" : "http"}://127.0.0.1:${localGatewayPort(broker) ?? config.serverPort}`;
}
