/**
 * A time-series chart drawn by uPlot, loaded on first use (its own chunk). The figure is an image
 * to assistive technology, labelled with the latest values in words.
 */
import { useEffect, useRef } from "preact/hooks";
import type uPlotType from "uplot";

export interface Series {
	label: string;
	values: Array<number | null>;
	stroke: string;
}

interface Props {
	title: string;
	/** Epoch seconds. */
	times: number[];
	series: Series[];
	height?: number;
	/** How to print a value on the axis and in the summary. */
	unit?: (v: number) => string;
	/** A fixed value axis (a ratio: 0..1); otherwise it fits the data. */
	range?: [number, number];
}

let uPlotModule: Promise<typeof uPlotType> | null = null;
const loadUPlot = () => (uPlotModule ??= import("uplot").then(m => m.default));

function summary(series: Series[], unit: (v: number) => string): string {
	return series
		.map(s => {
			const last = [...s.values].reverse().find(v => v !== null);
			return `${s.label}: ${last === undefined || last === null ? "no data" : unit(last)}`;
		})
		.join(", ");
}

export function Chart({ title, times, series, height = 160, unit = v => String(Math.round(v * 100) / 100), range }: Props) {
	const box = useRef<HTMLDivElement>(null);
	const plot = useRef<uPlotType | null>(null);
	const shape = series.map(s => s.label).join("|");
	const data = [times, ...series.map(s => s.values)] as uPlotType.AlignedData;
	const latest = useRef(data);
	latest.current = data;

	useEffect(() => {
		let disposed = false;
		void loadUPlot().then(UPlot => {
			if (disposed || !box.current) return;
			const width = Math.max(240, box.current.clientWidth);
			plot.current = new UPlot(
				{
					width,
					height,
					legend: { show: true },
					cursor: { drag: { x: false, y: false } },
					scales: { x: { time: true }, ...(range ? { y: { range } } : {}) },
					axes: [{ stroke: "#333" }, { stroke: "#333", values: (_u, ticks) => ticks.map(unit) }],
					series: [{}, ...series.map(s => ({ label: s.label, stroke: s.stroke, width: 2, points: { size: 4, fill: s.stroke } }))]
				},
				latest.current,
				box.current
			);
		});
		return () => {
			disposed = true;
			plot.current?.destroy();
			plot.current = null;
		};
	}, [shape, height]);

	useEffect(() => {
		plot.current?.setData(data);
	}, [times, series]);

	return (
		<figure class="chart">
			<figcaption>{title}</figcaption>
			<div ref={box} role="img" aria-label={`${title}. ${summary(series, unit)}`} />
		</figure>
	);
}
