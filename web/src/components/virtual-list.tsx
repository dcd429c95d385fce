/**
 * Windowed rendering: a table of any length with only the rows in view (plus a margin) in the DOM,
 * at a fixed row height. The scroll box is focusable, so the keyboard scrolls it too.
 */
import type { ComponentChildren } from "preact";
import { useLayoutEffect, useRef, useState } from "preact/hooks";

export const ROW_HEIGHT = 34;
const OVERSCAN = 8;

interface Props<T> {
	items: readonly T[];
	label: string;
	columns: Array<{ title: string; width: string }>;
	rowKey(item: T): string;
	row(item: T): ComponentChildren;
	height?: number;
}

export function VirtualTable<T>({ items, label, columns, rowKey, row, height = 560 }: Props<T>) {
	const box = useRef<HTMLDivElement>(null);
	const [scrollTop, setScrollTop] = useState(0);
	// A shorter list than where the view was: back into range.
	useLayoutEffect(() => {
		const max = Math.max(0, items.length * ROW_HEIGHT - height);
		if (box.current && box.current.scrollTop > max) box.current.scrollTop = max;
	}, [items.length, height]);
	const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
	const last = Math.min(items.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
	const template = columns.map(c => c.width).join(" ");
	return (
		<div class="vtable" role="table" aria-label={label} aria-rowcount={items.length + 1}>
			<div class="vrow vhead" role="row" aria-rowindex={1} style={{ gridTemplateColumns: template }}>
				{columns.map(c => (
					<span role="columnheader" key={c.title}>{c.title}</span>
				))}
			</div>
			<div
				ref={box}
				class="vbody"
				tabIndex={0}
				role="rowgroup"
				aria-label={`${label}: ${items.length} rows, scroll for more`}
				style={{ height: `${height}px` }}
				onScroll={e => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
			>
				<div style={{ height: `${items.length * ROW_HEIGHT}px`, position: "relative" }}>
					{items.slice(first, last).map((item, i) => (
						<div
							key={rowKey(item)}
							class="vrow"
							role="row"
							aria-rowindex={first + i + 2}
							style={{ top: `${(first + i) * ROW_HEIGHT}px`, gridTemplateColumns: template }}
						>
							{row(item)}
						</div>
					))}
				</div>
			</div>
		</div>
	);
}
