import type { Service, ServiceSchema } from "moleculer";

/** A service schema whose handlers see `this` as the service's own typed shape. */
export type TypedServiceSchema<TThis extends Service<Record<string, any>>> = ServiceSchema<Record<string, any>, Record<string, any>, Record<string, any>, TThis>;
