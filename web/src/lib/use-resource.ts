/**
 * One fetched thing a view shows, kept current: fetched on mount and when `key` changes, again
 * after a resync, and (throttled) whenever `isAbout` says a live event concerns it.
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import type { LiveMessage } from "./api-types";
import { errorText } from "./api";
import { throttle } from "./schedule";
import { useLive, useLoad } from "../store/hooks";

export interface Resource<T> {
	data: T | null;
	error: string | null;
	reload(): void;
}

export function useResource<T>(key: string, fetcher: () => Promise<T>, isAbout: (m: LiveMessage) => boolean = () => false, everyMs = 250): Resource<T> {
	const [state, setState] = useState<{ key: string; data: T | null; error: string | null }>({ key, data: null, error: null });
	const reload = useMemo(() => {
		let generation = 0;
		const run = () => {
			const gen = ++generation;
			fetcher().then(
				data => gen === generation && setState({ key, data, error: null }),
				err => gen === generation && setState(s => ({ key, data: s.key === key ? s.data : null, error: errorText(err) }))
			);
		};
		return Object.assign(throttle(run, everyMs), { now: run });
	}, [key]);
	useEffect(() => () => reload.cancel(), [reload]);
	useLoad(() => reload.now(), [reload]);
	useLive(m => isAbout(m) && reload());
	const current = state.key === key;
	return { data: current ? state.data : null, error: current ? state.error : null, reload: reload.now };
}
