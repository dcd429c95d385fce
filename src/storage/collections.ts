/**
 * Every collection the services keep, with the fields their queries filter and sort on and the
 * indexes those queries need: the whole schema in one place, whatever the adapter.
 */
import type { CollectionSpec } from "./entity-store";

export const COLLECTIONS = {
	agents: {
		name: "agents",
		idField: "id",
		queryable: { name: "string", type: "string", status: "string", node_id: "string", last_heartbeat: "string", version: "number" },
		indexes: [["status"], ["type", "status"], ["node_id"], ["name"]]
	},
	tasks: {
		name: "tasks",
		idField: "task_id",
		queryable: {
			status: "string", type: "string", pipeline_id: "string", run_id: "string", assigned_agent: "string",
			priority: "string", created_at: "string", version: "number", owner_node: "string", created_by: "string", finished_at: "string"
		},
		// ["created_by", "status"]: the open-task quota counts a subject's pending, retrying and running tasks.
		// ["status", "finished_at"]: the retention sweep's finished tasks by age.
		indexes: [["status", "created_at"], ["type", "created_at"], ["pipeline_id", "created_at"], ["assigned_agent", "status"], ["run_id"], ["priority", "created_at"], ["owner_node", "status"], ["created_by", "status"], ["status", "finished_at"]]
	},
	pipelines: {
		name: "pipelines",
		idField: "pipeline_id",
		queryable: { name: "string", created_at: "string" },
		indexes: [["created_at"], ["name"]]
	},
	runs: {
		name: "pipeline_runs",
		idField: "run_id",
		queryable: { pipeline_id: "string", status: "string", created_at: "string", version: "number", notification_due: "boolean", finished_at: "string" },
		indexes: [["status"], ["pipeline_id", "created_at"], ["notification_due"], ["status", "finished_at"]]
	},
	audit: {
		name: "audit",
		idField: "id",
		queryable: { timestamp: "string", actor: "string", action: "string", result: "string" },
		indexes: [["timestamp"], ["actor", "timestamp"], ["action", "timestamp"]]
	}
} as const satisfies Record<string, CollectionSpec>;
