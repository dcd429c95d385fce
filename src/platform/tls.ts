/**
 * The certificate files of the TLS settings (`config.tls`), read into what node's tls module takes.
 * A file that cannot be read, or a certificate and key that do not go together, is a ConfigError
 * naming its variable: the node does not start, and a reload on SIGHUP keeps what it had.
 */
import fs from "node:fs";
import type { ServerOptions } from "node:https";
import tls from "node:tls";
import { ConfigError, type TlsSettings } from "./config";

/** A file a variable names, or a ConfigError naming the variable. */
export function readConfigFile(variable: string, file: string): Buffer {
	try {
		return fs.readFileSync(file);
	} catch (err) {
		throw new ConfigError(variable, `cannot be read: ${(err as Error).message}`);
	}
}

/** A certificate and its key as one secure context would take them, checked to go together. */
export function keyPair(certVariable: string, certFile: string, keyVariable: string, keyFile: string): { cert: Buffer; key: Buffer } {
	const pair = { cert: readConfigFile(certVariable, certFile), key: readConfigFile(keyVariable, keyFile) };
	try {
		tls.createSecureContext(pair);
	} catch (err) {
		throw new ConfigError(certVariable, `with ${keyVariable}: ${(err as Error).message}`);
	}
	return pair;
}

/** The gateway's certificate, its key, and the CA its clients' certificates must be signed by: read at start and on SIGHUP. */
export function gatewaySecureContext(settings: TlsSettings): tls.SecureContextOptions | undefined {
	if (!settings.certFile || !settings.keyFile) return undefined;
	const pair = keyPair("TLS_CERT_FILE", settings.certFile, "TLS_KEY_FILE", settings.keyFile);
	return settings.clientCaFile ? { ...pair, ca: readConfigFile("TLS_CLIENT_CA_FILE", settings.clientCaFile) } : pair;
}

/** moleculer-web's `https` setting; with TLS_CLIENT_CA_FILE a client without a certificate signed by that CA fails the handshake. */
export function gatewayHttpsOptions(settings: TlsSettings): ServerOptions | undefined {
	const context = gatewaySecureContext(settings);
	if (!context) return undefined;
	return settings.clientCaFile ? { ...context, requestCert: true, rejectUnauthorized: true } : context;
}

/** What outbound TLS trusts with OUTBOUND_CA_FILE: Node's root certificates and the file's (one PEM certificate or several). */
export function outboundCa(file: string): string[] {
	const pem = readConfigFile("OUTBOUND_CA_FILE", file).toString("utf8");
	if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError("OUTBOUND_CA_FILE", "holds no PEM certificate");
	return [...tls.rootCertificates, pem];
}
