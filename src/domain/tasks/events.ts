/** The cluster events a task's changes are told in (besides `task.updated`, which carries the task itself). */
import type { ErrorMessage, Task } from "../../types";
import type { TaskFailure } from "./decide";

/** `mcp.error` for a failed attempt: the agent's own code when it named one, else ours. */
export function taskErrorEvent(task: Task, failure: TaskFailure): Omit<ErrorMessage, "type" | "timestamp"> {
	return {
		task_id: task.task_id,
		pipeline_id: task.pipeline_id ?? undefined,
		run_id: task.run_id ?? undefined,
		agent_id: task.assigned_agent ?? undefined,
		error: task.status === "failed" ? "Task execution failed" : "Task attempt failed",
		details: { code: failure.reason ?? failure.code, message: failure.message }
	};
}
