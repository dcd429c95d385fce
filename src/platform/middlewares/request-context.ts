/**
 * The request id of a REST call in every log line it causes, on every node.
 *
 * Moleculer carries `ctx.requestID` from the gateway's call down `ctx.call`, across nodes. This
 * middleware puts it in an AsyncLocalStorage scope around each action (and each event that carries
 * one), and the pino logger's `mixin` (see `broker-options.ts`) adds `request_id` from that scope to
 * every line, so services need not pass it around. Calls and events a service starts with
 * `this.broker.call/emit/broadcast` instead of `ctx.*` inherit the scope's id as well.
 *
 * Work that outlives a call, such as a timer or `setImmediate` scheduled in it, keeps its id: a
 * dispatcher pass woken by one request logs (and delivers) under that request's id, even for tasks
 * that other requests queued. The id says which call set the work going, not whose work it is.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { CallingOptions, Context, Middleware } from "moleculer";

interface RequestScope {
	request_id: string;
}

const requestScope = new AsyncLocalStorage<RequestScope>();

export function currentRequestId(): string | undefined {
	return requestScope.getStore()?.request_id;
}

export function runWithRequestId<T>(requestId: string, work: () => T): T {
	return requestScope.run({ request_id: requestId }, work);
}

/** pino `mixin`: a new object each time (pino merges the line's own fields into it). */
export function requestLogFields(): { request_id?: string } {
	const scope = requestScope.getStore();
	return scope ? { request_id: scope.request_id } : {};
}

type EventOptions = { requestID?: string; parentCtx?: unknown; groups?: string | string[] } & Record<string, unknown>;

/** Options of a call made outside `ctx.call`, given the scope's request id. */
export function withScopeRequestId(opts: CallingOptions | undefined): CallingOptions | undefined {
	const requestId = currentRequestId();
	if (!requestId || (opts && (opts.requestID || opts.parentCtx || opts.ctx))) return opts;
	return { ...opts, requestID: requestId };
}

/** Same for emit/broadcast, whose third argument may also be a group name or a list of them. */
export function eventOptionsWithScopeRequestId(opts: unknown): unknown {
	const requestId = currentRequestId();
	if (!requestId) return opts;
	if (typeof opts === "string" || Array.isArray(opts)) return { groups: opts, requestID: requestId };
	const given = (opts ?? {}) as EventOptions;
	if (given.requestID || given.parentCtx) return opts;
	return { ...given, requestID: requestId };
}

type ActionHandler = (ctx: Context) => Promise<unknown>;
type EventHandler = (ctx: Context) => unknown;
type Call = (actionName: string, params?: unknown, opts?: CallingOptions) => Promise<unknown>;
type Emit = (eventName: string, payload?: unknown, opts?: unknown) => Promise<void>;

export function requestContextMiddleware(): Middleware {
	return {
		name: "RequestContext",

		call(next: Call) {
			return (actionName: string, params?: unknown, opts?: CallingOptions) => next(actionName, params, withScopeRequestId(opts));
		},
		emit(next: Emit) {
			return (eventName: string, payload?: unknown, opts?: unknown) => next(eventName, payload, eventOptionsWithScopeRequestId(opts));
		},
		broadcast(next: Emit) {
			return (eventName: string, payload?: unknown, opts?: unknown) => next(eventName, payload, eventOptionsWithScopeRequestId(opts));
		},

		localAction(next: ActionHandler, action: { name: string; service?: { logger: { debug(...args: unknown[]): void } } }) {
			const logger = action.service?.logger;
			return function requestScoped(ctx: Context) {
				const requestId = ctx.requestID;
				if (!requestId) return next(ctx);
				if (currentRequestId() === requestId) {
					logger?.debug({ request_id: requestId }, `call ${action.name}`);
					return next(ctx);
				}
				return runWithRequestId(requestId, () => {
					logger?.debug({ request_id: requestId }, `call ${action.name}`);
					return next(ctx);
				});
			};
		},

		localEvent(next: EventHandler) {
			return function requestScoped(ctx: Context) {
				const requestId = ctx.requestID;
				// An id equal to the context's own was made up for this event: no request behind it.
				if (!requestId || requestId === ctx.id || currentRequestId() === requestId) return next(ctx);
				return runWithRequestId(requestId, () => next(ctx));
			};
		}
	} as unknown as Middleware;
}
