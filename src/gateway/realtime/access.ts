/**
 * Who may listen, and to what. Users with any role read everything (as `viewer` does over REST);
 * an agent token sees only its own agent and the tasks assigned to it, and a task callback token
 * only its one task: events would otherwise leak other agents' work to any registered agent.
 */
import { isAgentOnly, isAllowed } from "../../domain/access";
import { TokenError, type VerifiedToken } from "../../platform/tokens";
import type { TokenVerifier } from "../../platform/verify-token";
import type { ClusterMessage, Principal } from "../../types";

export interface RealtimeSession {
	principal: Principal;
	/** Epoch ms when the token expires: the connection ends then too. */
	expiresAt?: number;
}

export class RealtimeAuthError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "RealtimeAuthError";
	}
}

/** Verifies a presented token (the gateway's verifier and rules); rejects with `RealtimeAuthError` saying why it is refused. */
export async function authenticateListener(verifier: TokenVerifier, token: unknown): Promise<RealtimeSession> {
	if (typeof token !== "string" || token === "") throw new RealtimeAuthError("missing token");
	let verified: VerifiedToken;
	try {
		verified = await verifier.verify(token);
	} catch (err) {
		throw new RealtimeAuthError(err instanceof TokenError ? err.message : "Invalid token");
	}
	const { principal, expiresAt } = verified;
	if (!isAllowed(principal, { level: "read", agent: true }))
		throw new RealtimeAuthError(`roles ${JSON.stringify(principal.roles)} may not receive events`);
	return { principal, expiresAt };
}

export function isVisibleTo(principal: Principal, message: ClusterMessage): boolean {
	if (!isAgentOnly(principal)) return true;
	const own = principal.agent_id;
	switch (message.type) {
		case "agent_update":
			return message.agent_id === own && !principal.task_id;
		case "task_update":
			return message.assigned_agent === own && (!principal.task_id || principal.task_id === message.task_id);
		case "error":
			return message.agent_id === own && (!principal.task_id || principal.task_id === message.task_id);
		case "pipeline_progress":
			return false;
	}
}
