/**
 * Single writer across core nodes: every open entity of a service has an owner node, the one
 * whose actor drives it (timers, dispatch, delivery). A call about it runs on its owner: here,
 * forwarded there while that node lives, or, when it died, here after adopting the entity. An
 * adoption is a compare-and-set on the owner field, so exactly one survivor wins.
 */
import type { Context, Logger, ServiceBroker } from "moleculer";
import type { EntityActor } from "./entity-actor";

export interface Owned {
	owner_node: string;
	version: number;
	updated_at: string;
}

export interface OwnershipOptions<T extends Owned> {
	broker: ServiceBroker;
	logger: Logger;
	/** The service whose instances own entities (only its nodes can own). */
	service: string;
	actor: EntityActor<T>;
	idOf(entity: T): string;
	/** Only open entities are owned; a finished one may be read and answered anywhere. */
	isOpen(entity: T): boolean;
	/** This node now owns `entity` (adopted): take it up. */
	onAdopted(entity: T): Promise<void>;
}

type Routed<R> = { forwarded: true; result: R } | { forwarded: false };

export class Ownership<T extends Owned> {
	constructor(private readonly options: OwnershipOptions<T>) {}

	get nodeId(): string {
		return this.options.broker.nodeID;
	}

	nodeAlive(nodeId: string): boolean {
		const node = this.options.broker.registry.nodes.get(nodeId);
		return Boolean(node?.available && node.services.some(s => s.name === this.options.service));
	}

	/** Where `ctx`'s call about `id` runs: forwarded to the owner (its answer returned), or here. */
	async route<R>(ctx: Context<{ id: string }, { forwarded?: boolean }>, ownedHere: boolean): Promise<Routed<R>> {
		if (ownedHere || ctx.meta.forwarded) return { forwarded: false };
		const entity = await this.options.actor.load(ctx.params.id);
		if (entity.owner_node === this.nodeId || !this.options.isOpen(entity)) return { forwarded: false };
		if (this.nodeAlive(entity.owner_node)) {
			const result = await ctx.call<R, object>(ctx.action!.name!, ctx.params, { nodeID: entity.owner_node, meta: { forwarded: true } });
			return { forwarded: true, result };
		}
		await this.adopt(entity);
		return { forwarded: false };
	}

	/** Takes over an entity whose owner is gone; null when another node adopted it first. */
	async adopt(entity: T): Promise<T | null> {
		const { actor, idOf, logger } = this.options;
		const adopted = await actor.exclusive(idOf(entity), () =>
			actor.writeIf(entity, { owner_node: entity.owner_node, version: entity.version }, {
				owner_node: this.nodeId,
				version: entity.version + 1,
				updated_at: new Date().toISOString()
			} as Partial<T>)
		);
		if (adopted) {
			logger.info({ id: idOf(entity), from: entity.owner_node }, "adopted");
			await this.options.onAdopted(adopted);
		}
		return adopted;
	}

	/** Adopts every open entity in `candidates` whose owner `isOrphan` says is gone. */
	async adoptOrphans(candidates: T[], isOrphan: (ownerNode: string) => boolean): Promise<void> {
		for (const entity of candidates) if (entity.owner_node !== this.nodeId && isOrphan(entity.owner_node)) await this.adopt(entity);
	}
}
