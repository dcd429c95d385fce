import type { Service, ServiceSchema } from "moleculer";

/** A service schema whose handlers see `this` as the service's own typed shape. */
export type TypedServiceSchema<TThis extends Service<Record<string, any>>> = ServiceSchema<Record<string, any>, Record<string, any>, Record<string, any>, TThis>;

declare module "moleculer" {
	namespace Service {
		interface ActionSchema {
			/** Who may call it (see src/platform/trust.ts); an action without one is for trusted nodes only. */
			access?: import("./trust").Access;
		}
	}
}
