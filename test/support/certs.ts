/**
 * Certificates made with `openssl` when a test runs: a CA, a server certificate for 127.0.0.1 and
 * localhost (subjectAltName), a client certificate from that CA, and an unrelated CA with a client
 * certificate of its own. More server certificates (other serials) on demand, for reload tests.
 * And clients that present and trust what a test says.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { Agent, fetch as undiciFetch } from "undici";
import { tempDir } from "./broker";

export interface Issued {
	certFile: string;
	keyFile: string;
	cert: string;
	key: string;
	/** As `getPeerCertificate().serialNumber` spells it: upper-case hex. */
	serial: string;
}

export interface TestPki {
	dir: string;
	ca: Issued;
	server: Issued;
	client: Issued;
	otherCa: Issued;
	otherClient: Issued;
	/** A new server certificate from the CA (127.0.0.1 and localhost), with this serial. */
	issueServer(serial: number, name?: string): Issued;
}

const openssl = (dir: string, args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });

const evenHex = (n: number) => {
	const hex = n.toString(16).toUpperCase();
	return hex.length % 2 ? `0${hex}` : hex;
};

function issued(dir: string, name: string, serial: number): Issued {
	const certFile = path.join(dir, `${name}.pem`);
	const keyFile = path.join(dir, `${name}.key`);
	return { certFile, keyFile, cert: fs.readFileSync(certFile, "utf8"), key: fs.readFileSync(keyFile, "utf8"), serial: evenHex(serial) };
}

function makeCa(dir: string, name: string, serial: number): Issued {
	openssl(dir, [
		"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-set_serial", String(serial),
		"-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
		"-keyout", `${name}.key`, "-out", `${name}.pem`
	]);
	return issued(dir, name, serial);
}

function issue(dir: string, ca: Issued, name: string, serial: number, extensions: string[]): Issued {
	fs.writeFileSync(path.join(dir, `${name}.ext`), ["basicConstraints=CA:FALSE", ...extensions].join("\n") + "\n");
	openssl(dir, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`]);
	openssl(dir, [
		"x509", "-req", "-in", `${name}.csr`, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-set_serial", String(serial), "-days", "2",
		"-extfile", `${name}.ext`, "-out", `${name}.pem`
	]);
	return issued(dir, name, serial);
}

const SERVER_EXTENSIONS = ["subjectAltName=IP:127.0.0.1,DNS:localhost", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth"];
const CLIENT_EXTENSIONS = ["keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth"];

export function createTestPki(): TestPki {
	const dir = tempDir("mcp-pki-");
	const ca = makeCa(dir, "ca", 1);
	const otherCa = makeCa(dir, "other-ca", 2);
	return {
		dir,
		ca,
		otherCa,
		server: issue(dir, ca, "server", 0x10, SERVER_EXTENSIONS),
		client: issue(dir, ca, "client", 0x20, CLIENT_EXTENSIONS),
		otherClient: issue(dir, otherCa, "other-client", 0x30, CLIENT_EXTENSIONS),
		issueServer: (serial, name = `server-${serial}`) => issue(dir, ca, name, serial, SERVER_EXTENSIONS)
	};
}

/** What a TLS client presents and trusts: the CA (omitted: Node's roots), and a client certificate. */
export interface ClientTls {
	ca?: string;
	cert?: string;
	key?: string;
}

/** A JSON request over HTTPS with these client settings (one connection, closed after). */
export async function tlsRequest(url: string, client: ClientTls, init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
	const dispatcher = new Agent({ connect: { ...client } });
	try {
		const headers: Record<string, string> = { ...init.headers };
		if (init.token) headers.Authorization = `Bearer ${init.token}`;
		if (init.body !== undefined) headers["Content-Type"] = "application/json";
		const res = await undiciFetch(url, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), dispatcher });
		const text = await res.text();
		return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : null };
	} finally {
		await dispatcher.close();
	}
}

/** Why a request failed: the TLS or network error code of its cause (e.g. SELF_SIGNED_CERT_IN_CHAIN), or "answered". */
export async function tlsFailure(url: string, client: ClientTls): Promise<string> {
	try {
		await tlsRequest(url, client);
		return "answered";
	} catch (err) {
		const cause = (err as { cause?: { code?: string; message?: string } }).cause;
		return cause?.code ?? cause?.message ?? (err as Error).message;
	}
}

/** A fresh handshake (no session reuse): the serial of the certificate the server shows, or the error code. */
export function peerSerial(port: number, client: ClientTls): Promise<string> {
	return new Promise(resolve => {
		const socket = tls.connect({ host: "127.0.0.1", port, ...client }, () => {
			const serial = socket.getPeerCertificate().serialNumber;
			socket.end();
			resolve(serial);
		});
		socket.once("error", err => resolve((err as NodeJS.ErrnoException).code ?? err.message));
	});
}

/** `GET /health` written on a raw TLS connection: the first line of the answer, or the error code that ended the connection. */
export function httpOverTls(port: number, client: ClientTls): Promise<string> {
	return new Promise(resolve => {
		let answer = "";
		const socket = tls.connect({ host: "127.0.0.1", port, ...client }, () => socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
		socket.on("data", chunk => (answer += chunk.toString()));
		socket.once("error", err => resolve((err as NodeJS.ErrnoException).code ?? err.message));
		socket.once("close", () => resolve(answer.split("\r\n")[0] || "closed without an answer"));
	});
}
