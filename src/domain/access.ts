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

/** Does the caller match one of `grants` (subjects, or `role:<name>`)? */
export function isGranted(user: Principal, grants: readonly string[] | undefined): boolean {
	return (grants ?? []).some(grant => (grant.startsWith("role:") ? user.roles.includes(grant.slice(5) as Role) : grant === user.sub));
}

/** Admins, and a trusted node's own calls, may act on anything. */
function isAdmin(user: Principal): boolean {
	return user.roles.includes("admin") || user.roles.includes("system");
}

/**
 * Cancel, retry or remove something made by `createdBy`: its creator, an admin, or whoever
 * `managers` (a pipeline's `permissions.manage`) names.
 */
export function mayManage(user: Principal, createdBy: string | null, managers?: readonly string[]): boolean {
	return isAdmin(user) || (createdBy !== null && user.sub === createdBy) || isGranted(user, managers);
}

/** Execute a pipeline: every operator, unless its `permissions.execute` narrows that (its creator and admins always may). */
export function mayExecute(user: Principal, pipeline: { created_by: string | null; permissions?: { execute?: string[] } }): boolean {
	const only = pipeline.permissions?.execute;
	if (!only) return true;
	return isAdmin(user) || (pipeline.created_by !== null && user.sub === pipeline.created_by) || isGranted(user, only);
}

/** May this caller report on (progress/complete/fail) a task assigned to `assignedAgent`? */
export function mayReportOnTask(user: Principal, taskId: string, assignedAgent: string | null): boolean {
	if (!isAgentOnly(user)) return true;
	if (user.task_id && user.task_id !== taskId) return false;
	return assignedAgent !== null && user.agent_id === assignedAgent;
}
