/**
 * Token exchange: an API key (or an admin's token) buys a JWT with chosen roles.
 * API-key holders may mint viewer and operator tokens; only an admin mints admin tokens.
 */
import type { Context, Service } from "moleculer";
import { appConfig } from "../src/platform/app-config";
import { forbidden, unauthorized } from "../src/platform/errors";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { principalOf } from "../src/platform/trust";
import { mintToken, sameSecret } from "../src/platform/tokens";
import { USER_ROLES, type Principal, type TokenRequest, type TokenResponse } from "../src/types";

const MAX_EXPIRES_IN = 30 * 24 * 3600;

const AuthService: TypedServiceSchema<Service> = {
	name: "auth",
	actions: {
		token: {
			access: "public",
			params: {
				api_key: { type: "string", optional: true },
				sub: { type: "string", min: 1, max: 200 },
				roles: { type: "array", items: { type: "enum", values: [...USER_ROLES] }, optional: true, min: 1 },
				expires_in: { type: "number", integer: true, positive: true, max: MAX_EXPIRES_IN, optional: true }
			},
			handler(this: Service, ctx: Context<TokenRequest, { user?: Principal | null }>): TokenResponse {
				const config = appConfig(this.broker);
				const { api_key, sub, roles = ["viewer"], expires_in = 3600 } = ctx.params;
				const isAdmin = principalOf(ctx)?.roles.includes("admin") ?? false;
				if (!isAdmin) {
					if (!api_key || !sameSecret(api_key, config.secrets.apiKey)) throw unauthorized("A valid api_key (or an admin token) is required");
					if (roles.includes("admin")) throw forbidden("Only an admin may mint admin tokens");
				}
				return { token: mintToken(config.secrets.jwtSecret, { sub, roles, expiresInSec: expires_in }, config.jwt), expires_in };
			}
		}
	}
};

export default AuthService;
