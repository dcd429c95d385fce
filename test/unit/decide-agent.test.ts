/**
 * decideRegistration and decideAgent, table by table: every event in every agent status, the
 * heartbeat's reports and access rule, load sums, silence at its boundary, and registration
 * (defaults, re-registration, MAX_AGENTS). Expected records and decisions are written out.
 */
import { agentTokenRegistration, decideAgent, decideRegistration, type AgentDecision, type AgentEvent, type RegistrationContext, type StoredAgent } from "../../src/domain/agents/decide";
import { AGENT_STATUSES, type AgentHeartbeat, type AgentRegistration, type AgentStatus, type Principal } from "../../src/types";

const REGISTERED = "2026-01-01T00:00:00.000Z";
const LAST_HEARD = "2026-01-01T00:00:30.000Z";
/** The decider's clock: a minute after the agent was last heard from. */
const NOW = "2026-01-01T00:01:30.000Z";
const ctx = { now: new Date(NOW) };

function agent(status: AgentStatus, fields: Partial<StoredAgent> = {}): StoredAgent {
	return {
		id: "agent-1",
		name: "crawler",
		type: "worker",
		status,
		capabilities: ["fetch"],
		endpoints: { health: "http://crawler.test/health" },
		resources: { cpu: 2 },
		node_id: "node-a",
		service: "crawler",
		current_load: 0.25,
		running_tasks: 1,
		running_by_node: { "core-2": 1 },
		last_heartbeat: LAST_HEARD,
		registered_at: REGISTERED,
		updated_at: LAST_HEARD,
		version: 3,
		...fields
	};
}

const NOTHING: AgentDecision = { change: null, effects: [] };
const announce = (previous: AgentStatus) => [{ type: "announce" as const, previous }];

/** A status change, announced with the status it left. */
const moved = (previous: AgentStatus, status: AgentStatus, extra: Partial<StoredAgent> = {}): AgentDecision => ({
	change: { status, updated_at: NOW, ...extra },
	effects: announce(previous)
});

/**
 * A heartbeat: written (status and both clocks) and announced only when the status moves; otherwise
 * nothing, since the beat and its load are liveness, kept in memory by the service.
 */
const heartbeat = (status: AgentStatus, previous: AgentStatus): AgentDecision =>
	status === previous ? NOTHING : { change: { status, updated_at: NOW, last_heartbeat: NOW }, effects: announce(previous) };

/** A healthy poll of an agent that needs no status change: liveness, no write. */
const HEARD = NOTHING;

const loaded = (previous: AgentStatus): AgentDecision => ({
	change: { running_by_node: { "core-2": 1, "core-1": 2 }, running_tasks: 3 },
	effects: announce(previous)
});

// ---------- every event in every status ----------

const EVENTS: Record<string, AgentEvent> = {
	heartbeat: { type: "heartbeat", report: {} },
	silence: { type: "silence", timeoutMs: 30_000, lastHeardAt: 0 },
	"health (healthy)": { type: "health", healthy: true },
	"health (unhealthy)": { type: "health", healthy: false },
	drain: { type: "drain" },
	"node-left": { type: "node-left" },
	load: { type: "load", node_id: "core-1", running_tasks: 2 }
};

const MATRIX: Record<keyof typeof EVENTS, Record<AgentStatus, AgentDecision>> = {
	heartbeat: {
		active: heartbeat("active", "active"),
		busy: heartbeat("active", "busy"),
		unhealthy: heartbeat("active", "unhealthy"),
		offline: heartbeat("active", "offline"),
		draining: heartbeat("draining", "draining")
	},
	// Gone offline, the record keeps when the agent was last heard.
	silence: {
		active: moved("active", "offline", { last_heartbeat: LAST_HEARD }),
		busy: moved("busy", "offline", { last_heartbeat: LAST_HEARD }),
		unhealthy: moved("unhealthy", "offline", { last_heartbeat: LAST_HEARD }),
		offline: NOTHING,
		draining: moved("draining", "offline", { last_heartbeat: LAST_HEARD })
	},
	"health (healthy)": {
		active: HEARD,
		busy: HEARD,
		unhealthy: moved("unhealthy", "active", { last_heartbeat: NOW }),
		offline: moved("offline", "active", { last_heartbeat: NOW }),
		draining: HEARD
	},
	"health (unhealthy)": {
		active: moved("active", "unhealthy"),
		busy: moved("busy", "unhealthy"),
		unhealthy: NOTHING,
		offline: NOTHING,
		draining: NOTHING
	},
	// The drain is remembered (`drained`): an offline agent stays offline now, and comes back draining.
	drain: {
		active: moved("active", "draining", { drained: true }),
		busy: moved("busy", "draining", { drained: true }),
		unhealthy: moved("unhealthy", "draining", { drained: true }),
		offline: { change: { drained: true }, effects: [] },
		draining: { change: { drained: true }, effects: [] }
	},
	"node-left": {
		active: moved("active", "offline"),
		busy: moved("busy", "offline"),
		unhealthy: moved("unhealthy", "offline"),
		offline: NOTHING,
		draining: moved("draining", "offline")
	},
	load: {
		active: loaded("active"),
		busy: loaded("busy"),
		unhealthy: loaded("unhealthy"),
		offline: loaded("offline"),
		draining: loaded("draining")
	}
};

const CELLS = Object.entries(MATRIX).flatMap(([event, byStatus]) =>
	AGENT_STATUSES.map((status): [string, AgentStatus, AgentDecision] => [event, status, byStatus[status]])
);

describe("every event in every agent status", () => {
	test.each(CELLS)("%s on a %s agent", (event, status, expected) => {
		expect(decideAgent(agent(status), EVENTS[event], ctx)).toStrictEqual(expected);
	});
});

// ---------- heartbeat ----------

describe("heartbeat reports", () => {
	test.each<[AgentStatus, AgentHeartbeat, AgentDecision]>([
		["active", { status: "busy" }, heartbeat("busy", "active")],
		["busy", { status: "busy" }, heartbeat("busy", "busy")],
		// The load is never the record's: the service keeps it with the beat.
		["busy", { status: "active", current_load: 0.9 }, heartbeat("active", "busy")],
		["offline", { status: "busy" }, heartbeat("busy", "offline")],
		["active", { current_load: 0.5 }, NOTHING],
		["active", { status: "draining" }, heartbeat("draining", "active")],
		["draining", { status: "active" }, heartbeat("draining", "draining")],
		["draining", { status: "busy", current_load: 0.9 }, NOTHING]
	])("%s agent reporting %j", (status, report, expected) => {
		expect(decideAgent(agent(status), { type: "heartbeat", report }, ctx)).toStrictEqual(expected);
	});
});

describe("heartbeat access: an agent token only as itself", () => {
	const FORBIDDEN: AgentDecision = { reject: { code: "FORBIDDEN", message: "An agent may only heartbeat as itself" } };
	const allowed = heartbeat("active", "busy");
	test.each<[string, Principal | undefined, AgentDecision]>([
		["another agent's token", { sub: "agent:agent-2", roles: ["agent"], agent_id: "agent-2" }, FORBIDDEN],
		["an agent token naming no agent", { sub: "agent:?", roles: ["agent"] }, FORBIDDEN],
		["its own token", { sub: "agent:agent-1", roles: ["agent"], agent_id: "agent-1", rat: REGISTERED }, allowed],
		["an operator", { sub: "ops", roles: ["operator"] }, allowed],
		["an admin", { sub: "root", roles: ["admin"] }, allowed],
		["a token that is an agent's and an operator's", { sub: "both", roles: ["agent", "operator"], agent_id: "agent-2" }, allowed],
		["no caller (in-cluster)", undefined, allowed]
	])("%s", (_who, by, expected) => {
		expect(decideAgent(agent("busy"), { type: "heartbeat", report: {}, by }, ctx)).toStrictEqual(expected);
	});
});

// ---------- silence ----------

describe("silence: strictly longer than the timeout since the last heartbeat", () => {
	test.each<[number, AgentDecision]>([
		[59_999, moved("busy", "offline", { last_heartbeat: LAST_HEARD })],
		[60_000, NOTHING],
		[120_000, NOTHING]
	])("timeout %d ms, heard 60 s ago (stored)", (timeoutMs, expected) => {
		expect(decideAgent(agent("busy"), { type: "silence", timeoutMs, lastHeardAt: 0 }, ctx)).toStrictEqual(expected);
	});

	const heardLater = "2026-01-01T00:01:00.000Z";
	test.each<[string, number, AgentDecision]>([
		["heard in memory 30 s ago, after the stored beat: alive", Date.parse(heardLater), NOTHING],
		["heard in memory before the stored beat: the stored one counts", Date.parse(REGISTERED), moved("busy", "offline", { last_heartbeat: LAST_HEARD })]
	])("timeout 40 s, %s", (_what, lastHeardAt, expected) => {
		expect(decideAgent(agent("busy"), { type: "silence", timeoutMs: 40_000, lastHeardAt }, ctx)).toStrictEqual(expected);
	});

	test("once silent, the record keeps the beat heard in memory", () => {
		const heardAt = Date.parse("2026-01-01T00:00:50.000Z");
		expect(decideAgent(agent("busy"), { type: "silence", timeoutMs: 20_000, lastHeardAt: heardAt }, ctx)).toStrictEqual(
			moved("busy", "offline", { last_heartbeat: "2026-01-01T00:00:50.000Z" })
		);
	});
});

// ---------- load ----------

describe("load: per core node, summed", () => {
	test.each<[string, Record<string, number> | undefined, string, number, Record<string, number>, number]>([
		["a new node adds to the others", { "core-2": 1 }, "core-1", 2, { "core-2": 1, "core-1": 2 }, 3],
		["a node's new count replaces its old one", { "core-1": 5, "core-2": 1 }, "core-1", 2, { "core-1": 2, "core-2": 1 }, 3],
		["zero drops the node", { "core-1": 5, "core-2": 1 }, "core-1", 0, { "core-2": 1 }, 1],
		["the last node at zero leaves nothing", { "core-1": 5 }, "core-1", 0, {}, 0],
		["an agent never counted", undefined, "core-1", 4, { "core-1": 4 }, 4]
	])("%s", (_what, running_by_node, node_id, running_tasks, expectedByNode, expectedSum) => {
		expect(decideAgent(agent("active", { running_by_node }), { type: "load", node_id, running_tasks }, ctx)).toStrictEqual({
			change: { running_by_node: expectedByNode, running_tasks: expectedSum },
			effects: announce("active")
		});
	});
});

// ---------- registration ----------

const REGISTRATION: AgentRegistration = { name: "crawler", type: "validator", capabilities: ["fetch", "parse", "fetch"] };
const OPERATOR: Principal = { sub: "olive", roles: ["operator"] };
const API_KEY: Principal = { sub: "api-key", roles: [], via_api_key: true };
const roomy = (fields: Partial<RegistrationContext> = {}): RegistrationContext => ({ now: new Date(NOW), id: "agent-new", storedAgents: 0, maxAgents: 10, by: OPERATOR, ...fields });

describe("registration", () => {
	test("a new agent: version 1, no load, de-duplicated capabilities, empty endpoints and resources, no node or service", () => {
		expect(decideRegistration(null, REGISTRATION, roomy())).toStrictEqual({
			record: {
				id: "agent-new", name: "crawler", type: "validator", status: "active", capabilities: ["fetch", "parse"],
				endpoints: {}, resources: {}, node_id: null, service: null, current_load: 0, running_tasks: 0,
				last_heartbeat: NOW, registered_at: NOW, updated_at: NOW, version: 1
			}
		});
	});

	test("a new agent keeps the endpoints, resources, node and service it gives", () => {
		const reg: AgentRegistration = {
			...REGISTRATION, endpoints: { task: "http://c/task", health: "http://c/health" }, resources: { cpu: 4, gpu: true }, node_id: "node-b", service: "crawler-svc"
		};
		expect(decideRegistration(null, reg, roomy())).toStrictEqual({
			record: {
				id: "agent-new", name: "crawler", type: "validator", status: "active", capabilities: ["fetch", "parse"],
				endpoints: { task: "http://c/task", health: "http://c/health" }, resources: { cpu: 4, gpu: true }, node_id: "node-b", service: "crawler-svc",
				current_load: 0, running_tasks: 0, last_heartbeat: NOW, registered_at: NOW, updated_at: NOW, version: 1
			}
		});
	});

	test.each<[AgentStatus, AgentStatus]>([
		["active", "active"],
		["busy", "active"],
		["unhealthy", "active"],
		["offline", "active"],
		["draining", "draining"]
	])("re-registering a %s agent: same id, record and counts, new description, status %s", (status, expected) => {
		expect(decideRegistration(agent(status), REGISTRATION, roomy())).toStrictEqual({
			record: {
				id: "agent-1", name: "crawler", type: "validator", status: expected, capabilities: ["fetch", "parse"],
				endpoints: {}, resources: {}, node_id: null, service: null,
				current_load: 0.25, running_tasks: 1, running_by_node: { "core-2": 1 },
				last_heartbeat: NOW, registered_at: REGISTERED, updated_at: NOW, version: 3
			}
		});
	});

	test("a drained agent comes back draining, whatever it was in between", () => {
		expect(decideRegistration(agent("offline", { drained: true }), REGISTRATION, roomy())).toMatchObject({ record: { status: "draining", drained: true } });
	});
});

describe("registration: who may take a name", () => {
	const OWN: Principal = { sub: "agent:agent-1", roles: ["agent"], agent_id: "agent-1", rat: REGISTERED };
	const EARLIER: Principal = { ...OWN, rat: "2020-01-01T00:00:00.000Z" };
	const OTHER: Principal = { sub: "agent:agent-2", roles: ["agent"], agent_id: "agent-2", rat: REGISTERED };
	const taken = (status: AgentStatus) => ({
		reject: {
			code: "CONFLICT",
			message: "Agent 'crawler' is registered and alive: re-registering it needs its own token or an operator's",
			details: { id: "agent-1", status }
		}
	});
	test.each<[string, AgentStatus, Principal | null, "keeps" | "renews" | "refused"]>([
		["the API key on a live agent", "active", API_KEY, "refused"],
		["the API key on a draining agent", "draining", API_KEY, "refused"],
		["another agent's token", "busy", OTHER, "refused"],
		["a token of an earlier registration", "active", EARLIER, "refused"],
		["nobody", "active", null, "refused"],
		["its own token", "active", OWN, "keeps"],
		["an operator", "unhealthy", OPERATOR, "keeps"],
		["the API key on an offline agent: a new registration", "offline", API_KEY, "renews"],
		["another agent's token on an offline agent: a new registration", "offline", OTHER, "renews"]
	])("%s", (_what, status, by, outcome) => {
		const decided = decideRegistration(agent(status), REGISTRATION, roomy({ by }));
		if (outcome === "refused") expect(decided).toStrictEqual(taken(status));
		else expect(decided).toMatchObject({ record: { id: "agent-1", registered_at: outcome === "keeps" ? REGISTERED : NOW } });
	});
});

describe("registration with an agent token: its own agent, of the registration stored now", () => {
	const OWN: Principal = { sub: "agent:agent-1", roles: ["agent"], agent_id: "agent-1", rat: REGISTERED };
	const REVOKED = { code: "UNAUTHORIZED", message: "This agent token belongs to a removed or earlier registration; register again with the API key" };
	const OTHER_NAME = { code: "FORBIDDEN", message: "An agent token may only re-register its own agent" };
	test.each<[string, Principal | null, StoredAgent | null, string, object | null]>([
		["its own token, current", OWN, agent("active"), "agent-1", null],
		["its own token, the agent offline", OWN, agent("offline"), "agent-1", null],
		["a token of an earlier registration", { ...OWN, rat: "2020-01-01T00:00:00.000Z" }, agent("offline"), "agent-1", REVOKED],
		["its own token, the agent removed", OWN, null, "agent-1", REVOKED],
		["another name", OWN, agent("active", { id: "agent-2" }), "agent-2", OTHER_NAME],
		["another, new name", OWN, null, "agent-new", OTHER_NAME],
		["an operator", OPERATOR, null, "agent-new", null],
		["a token that is an agent's and an operator's", { ...OWN, roles: ["agent", "operator"] }, null, "agent-new", null],
		["the API key", API_KEY, agent("active"), "agent-1", null],
		["nobody", null, null, "agent-new", null]
	])("%s", (_what, by, existing, id, expected) => {
		expect(agentTokenRegistration(by, existing, id)).toStrictEqual(expected);
	});
});

describe("registration under MAX_AGENTS (what is stored counts, offline agents too)", () => {
	const LIMIT = { code: "CONFLICT", message: "Agent limit reached (MAX_AGENTS=2)", details: { max_agents: 2 } };
	test.each<[string, StoredAgent | null, number, "record" | "reject"]>([
		["a new agent at the limit", null, 2, "reject"],
		["a new agent over the limit", null, 3, "reject"],
		["a new agent with room", null, 1, "record"],
		// A stored agent is already counted: coming back adds nothing.
		...(["active", "busy", "unhealthy", "offline", "draining"] as const).map((status): [string, StoredAgent, number, "record"] => [`a stored ${status} agent at the limit`, agent(status), 2, "record"]),
		["a stored agent over the limit", agent("active"), 3, "record"]
	])("%s", (_what, existing, storedAgents, outcome) => {
		const decided = decideRegistration(existing, REGISTRATION, roomy({ storedAgents, maxAgents: 2 }));
		if (outcome === "reject") expect(decided).toStrictEqual({ reject: LIMIT });
		else expect(decided).toMatchObject({ record: { id: existing?.id ?? "agent-new", name: "crawler", updated_at: NOW } });
	});
});
