/** Preact hooks over the store: live events, resyncs and periodic refreshes for the lifetime of a view. */
import { useEffect, useRef } from "preact/hooks";
import type { LiveMessage } from "../lib/api-types";
import { onLive, onResync } from "./store";

/** Calls the latest `fn` for each live event while mounted. */
export function useLive(fn: (message: LiveMessage) => void): void {
	const ref = useRef(fn);
	ref.current = fn;
	useEffect(() => onLive(m => ref.current(m)), []);
}

/** Runs `load` now, after every resync, and whenever `deps` change. */
export function useLoad(load: () => void, deps: unknown[]): void {
	const ref = useRef(load);
	ref.current = load;
	useEffect(() => onResync(() => ref.current()), []);
	useEffect(() => ref.current(), deps);
}

/** Runs `fn` every `ms` while mounted (things no event announces, such as plain heartbeats). */
export function useEvery(fn: () => void, ms: number): void {
	const ref = useRef(fn);
	ref.current = fn;
	useEffect(() => {
		const timer = setInterval(() => ref.current(), ms);
		return () => clearInterval(timer);
	}, [ms]);
}
