/**
 * The one runtime piece behind every actor (tasks, pipeline runs, agents). An entity changes only
 * through `change`: its mailbox on this node runs one change at a time per id, and a
 * compare-and-set on the record's `version` in the store makes a concurrent writer on another node
 * lose cleanly. The loser forgets its copy, reloads, and decides again on what is stored.
 *
 * Deciding is a pure function of the current record (see `src/domain/decision.ts`); it may run
 * more than once, so it must not do anything. What it wants done comes back as effects, which the
 * caller executes once, after the commit.
 */
import type { Decision } from "../domain/decision";
import { ApiError, notFound } from "../platform/errors";
import type { EntityStore, Filter } from "../storage/entity-store";
import { KeyedQueue } from "./keyed-queue";

export interface Versioned {
	version: number;
}

/** Records this node may trust its own copy of (it is their only writer): saves a read per change. */
export interface EntityCache<T> {
	get(id: string): T | undefined;
	/** Called with every committed record: keep it, or drop it (say, a task that ended). */
	put(entity: T): void;
	delete(id: string): void;
}

export interface EntityActorOptions<T extends object> {
	/** For messages: "Task", "Run", "Agent". */
	kind: string;
	idField: keyof T & string;
	store(): EntityStore<T>;
	/** Tries before a write that keeps losing to other nodes answers 409. */
	maxTries: number;
	/** Fields set on every committed change (`updated_at`). */
	stamp?(now: Date): Partial<T>;
	cache?: EntityCache<T>;
	/** What must still be stored for a write to apply; `{ version }` unless more is compared. */
	guard?(current: T): Filter;
}

export interface Outcome<T, E> {
	/** The record after the change (the same as `previous` when nothing changed). */
	entity: T;
	previous: T;
	changed: boolean;
	effects: E[];
}

export class EntityActor<T extends Versioned & object> {
	private readonly mailbox = new KeyedQueue();

	constructor(private readonly options: EntityActorOptions<T>) {}

	/** Runs `work` in the entity's mailbox: nothing else changes it on this node meanwhile. */
	exclusive<R>(id: string, work: () => Promise<R>): Promise<R> {
		return this.mailbox.run(id, work);
	}

	/** The current record: this node's own copy when it keeps one, else the store's. */
	async load(id: string): Promise<T> {
		const entity = this.options.cache?.get(id) ?? (await this.options.store().get(id));
		if (!entity) throw notFound(this.options.kind, id);
		return entity;
	}

	/** Decides on the current record and commits the change; a refusal is thrown as the API error it names. */
	change<E>(id: string, decide: (current: T) => Decision<T, E>): Promise<Outcome<T, E>> {
		return this.mailbox.run(id, () => this.commit(id, decide));
	}

	/**
	 * Writes a record this node decided without a mailbox turn (an adoption, which compares
	 * fields of its own): the cache learns it on success.
	 */
	async writeIf(current: T, expected: Filter, fields: Partial<T>): Promise<T | null> {
		const next = { ...current, ...fields };
		const { [this.options.idField]: _id, ...changes } = fields as Record<string, unknown>;
		if (!(await this.options.store().updateIf(this.idOf(current), expected, changes as Partial<T>))) return null;
		this.options.cache?.put(next);
		return next;
	}

	/**
	 * Removes those of `ids` that still match `guard`, in one store statement: a compare-and-set
	 * removal, so a record another node changed meanwhile (a retried task) stays. A record this
	 * node keeps a copy of is left out unless `removable` says that copy may go (an open task it
	 * drives is not), and the cache forgets the others before the statement, so a change committed
	 * meanwhile is cached again as usual. How many went.
	 */
	async removeWhere(ids: readonly string[], guard: Filter, removable: (cached: T) => boolean): Promise<number> {
		const { cache, idField } = this.options;
		const candidates = ids.filter(id => {
			const cached = cache?.get(id);
			return !cached || removable(cached);
		});
		if (!candidates.length) return 0;
		for (const id of candidates) cache?.delete(id);
		return this.options.store().removeMany({ ...guard, [idField]: { $in: candidates } });
	}

	private idOf(entity: T): string {
		return String((entity as Record<string, unknown>)[this.options.idField]);
	}

	private async commit<E>(id: string, decide: (current: T) => Decision<T, E>): Promise<Outcome<T, E>> {
		const { cache, maxTries } = this.options;
		for (let tries = 1; ; tries++) {
			const current = await this.load(id);
			const decision = decide(current);
			if ("reject" in decision) throw new ApiError(decision.reject.code, decision.reject.message, decision.reject.details);
			if (!decision.change) return { entity: current, previous: current, changed: false, effects: decision.effects };
			const fields = { ...decision.change, ...this.options.stamp?.(new Date()), version: current.version + 1 } as Partial<T>;
			const expected = this.options.guard?.(current) ?? { version: current.version };
			const next = await this.writeIf(current, expected, fields);
			if (next) return { entity: next, previous: current, changed: true, effects: decision.effects };
			// Another node changed it first: forget our copy and decide again on the stored one.
			cache?.delete(id);
			if (tries >= maxTries) throw new ApiError("CONFLICT", `${this.options.kind} is being changed concurrently; try again`);
		}
	}
}
