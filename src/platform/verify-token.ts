/**
 * The one check of a presented token, used by the gateway, the trust middleware (every action, on
 * every node that holds JWT_SECRET) and the real-time channels: HS256 with JWT_SECRET (tokens.ts:
 * ours and the Flask service's, under the `JWT_*` rules). Asynchronous, so that a verifier that
 * must fetch keys first fits behind the same call. Every refusal is a `TokenError` (401).
 */
import type { ServiceBroker } from "moleculer";
import { nodeConfig } from "./app-config";
import type { JwtSettings } from "./config";
import { DEFAULT_JWT_SETTINGS, TokenError, verifyTokenClaims, type VerifiedToken } from "./tokens";

export interface TokenVerifier {
	/** Resolves the verified caller and its expiry; rejects with `TokenError`. */
	verify(token: string): Promise<VerifiedToken>;
}

export interface TokenVerifierOptions {
	/** Unset on nodes that cannot verify HS256 tokens (agent nodes). */
	jwtSecret?: string;
	jwt?: JwtSettings;
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
	const { jwtSecret } = options;
	const jwt = options.jwt ?? DEFAULT_JWT_SETTINGS;
	return {
		async verify(token) {
			if (!jwtSecret) throw new TokenError("This node cannot verify tokens");
			return verifyTokenClaims(jwtSecret, token, jwt);
		}
	};
}

const verifiers = new WeakMap<ServiceBroker, TokenVerifier>();

/** This node's verifier, from its config. */
export function tokenVerifierOf(broker: ServiceBroker): TokenVerifier {
	let verifier = verifiers.get(broker);
	if (!verifier) {
		const config = nodeConfig(broker);
		verifier = createTokenVerifier({ jwtSecret: config.secrets.jwtSecret, jwt: config.jwt });
		verifiers.set(broker, verifier);
	}
	return verifier;
}
