/**
 * Role-based access decisions. Each REST action declares the access it needs; the gateway asks
 * `isAllowed` before calling it. Agents are not above viewers: they only reach actions that
 * accept agents, and those actions check that the agent acts on itself (`actsOnOwnAgent`).
 */
import type { Principal, Role } from "../types";

/** What an action needs: `read` (viewer+), `operate` (operator+), `admin`. `agent` lets agent tokens in too, `apiKey` the API key. */
export interface AccessRule {
	level: "read" | "operate" | "admin";
	agent?: boolean;
	apiKey?: boolean;
}

const LEVEL_ROLES: Record<AccessRule["level"], Role[]> = {
	read: ["viewer", "operator", "admin"],
	operate: ["operator", "admin"],
	admin: ["admin"]
};

export function isAllowed(user: Principal, rule: AccessRule): boolean {
	if (user.roles.some(role => LEVEL_ROLES[rule.level].includes(role))) return true;
	if (rule.apiKey === true && user.via_api_key === true) return true;
	return rule.agent === true && user.roles.includes("agent");
}

/** True when the caller is an agent token (and not also a user with a real role). */
export function isAgentOnly(user: Principal): boolean {
	return user.roles.includes("agent") && !user.roles.some(r => r !== "agent");
}

export function actsOnOwnAgent(user: Principal, agentId: string): boolean {
	return !isAgentOnly(user) || user.agent_id === agentId;
}

/** May this caller report on (progress/complete/fail) a task assigned to `assignedAgent`? */
export function mayReportOnTask(user: Principal, taskId: string, assignedAgent: string | null): boolean {
	if (!isAgentOnly(user)) return true;
	if (user.task_id && user.task_id !== taskId) return false;
	return assignedAgent !== null && user.agent_id === assignedAgent;
}
