// An in-memory Warden for tests and for `npm run dev` in a plain browser.
// It answers the calls the UI makes with plausible data, records every
// request, and lets a test replace any call's answer.
import { ApiFailure, type Backend, type ShellCommands } from "../backend";
import type {
  ActivityRow,
  Agent,
  AppStatus,
  ApprovalRequest,
  DayCount,
  Enrollment,
  ErrorCode,
  Request,
  Response,
  Role,
  ServerInfo,
  ServerPreset,
  SsoConfig,
  ToolJson,
  User,
} from "../types";

type Call = Request["call"];
type Handler = (req: Request, fake: FakeBackend) => Response | Promise<Response>;

export interface FakeState {
  status: AppStatus;
  password: string;
  users: User[];
  agents: Agent[];
  roles: Role[];
  servers: ServerInfo[];
  tools: Record<string, ToolJson[]>;
  pending: ApprovalRequest[];
  version: number;
  activity: ActivityRow[];
  days: DayCount[];
  presets: ServerPreset[];
  sso: SsoConfig | null;
}

export const NOW_US = () => Date.now() * 1000;

export function user(name: string, role = "admin", id = 1): User {
  return {
    id,
    name,
    role,
    status: "active",
    totp_enrolled: true,
    created_at_us: NOW_US() - 86_400e6,
    last_login_us: NOW_US() - 3600e6,
    invited: false,
  };
}

export function agent(name: string, id = 1, owner_id: number | null = 1): Agent {
  return {
    id,
    name,
    status: "active",
    created_at_us: NOW_US() - 5 * 86_400e6,
    last_used_at_us: NOW_US() - 600e6,
    expires_at_us: NOW_US() + 25 * 86_400e6,
    rotated_at_us: null,
    owner_id,
    roles: ["dev"],
    owner: owner_id === null ? null : "ada",
  };
}

export function server(name: string, extra: Partial<ServerInfo> = {}): ServerInfo {
  return {
    name,
    transport: "stdio",
    target: `npx -y @modelcontextprotocol/server-${name}`,
    state: "ready",
    era: { era: "legacy", version: "2025-11-25" },
    tools: 2,
    restarts: 0,
    probe: null,
    ...extra,
  } as ServerInfo;
}

export function tool(name: string, risk: "low" | "high" | "critical" = "low", extra: Partial<ToolJson> = {}): ToolJson {
  return {
    name,
    description: `The ${name} tool.`,
    annotations: { readOnlyHint: risk === "low" },
    warden: {
      risk,
      why: risk === "low" ? ["the server marks it read-only"] : ["it can change files"],
      definition_hash: `hash-${name}`,
      state: "pinned",
      quarantine: null,
    },
    ...extra,
  };
}

export function approval(id: string, extra: Partial<ApprovalRequest> = {}): ApprovalRequest {
  const now = NOW_US();
  return {
    id,
    agent_id: 1,
    agent: "claude-desktop",
    person: "alice",
    chain: null,
    server: "filesystem",
    tool: "write_file",
    risk: "high",
    why: ["it can change files"],
    arguments: { path: "/home/alice/notes.txt", content: "hello" },
    arguments_hash: "ah",
    definition_hash: "dh",
    session: "s1",
    method: "tools/call",
    session_choice: true,
    requested_at_us: now,
    expires_at_us: now + 120e6,
    ...extra,
  };
}

export function row(id: number, extra: Partial<ActivityRow> = {}): ActivityRow {
  return {
    id,
    time_us: NOW_US() - id * 60e6,
    kind: "tool_call.requested",
    call_id: `c${id}`,
    agent: "claude-desktop",
    on_behalf_of: "alice",
    chain: null,
    server: "filesystem",
    tool: "read_file",
    arguments: '{"path":"/tmp/a.txt"}',
    arguments_hash: "h",
    risk: "low",
    decision: "allow",
    approver: null,
    outcome: "ok",
    latency_us: 1200,
    detail: null,
    prev_hash: "p",
    hash: `h${id}`,
    ...extra,
  } as ActivityRow;
}

export function enrollment(name: string): Enrollment {
  return {
    user: user(name),
    totp_secret: "JBSWY3DPEHPK3PXP",
    otpauth_uri: `otpauth://totp/Warden:${name}?secret=JBSWY3DPEHPK3PXP`,
    qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    recovery_codes: ["abcde-fghij", "klmno-pqrst", "uvwxy-z0123"],
  };
}

export function defaultState(): FakeState {
  return {
    status: {
      initialized: true,
      user: user("alice"),
      sso: false,
      endpoint: "http://127.0.0.1:7420/mcp",
      paused: false,
      version: "0.1.0",
      data_dir: "/home/alice/.local/share/warden",
      held_settings: [],
    },
    password: "correct horse battery",
    users: [user("alice"), user("bob", "member", 2)],
    agents: [agent("claude-desktop")],
    roles: [
      {
        name: "reader",
        description: "Reads files",
        grants: [{ server: "filesystem", pattern: "read_file", effect: "allow", explicit: false }],
      },
    ],
    servers: [server("filesystem")],
    tools: { filesystem: [tool("read_file"), tool("write_file", "high")] },
    pending: [],
    version: 1,
    activity: [row(1), row(2, { tool: "write_file", decision: "ask", risk: "high" })],
    days: [],
    presets: [
      {
        id: "filesystem",
        title: "Files in a folder",
        description: "Read and write the files in one folder.",
        command: "npx",
        args: ["-y", "@modelcontextprotocol/server-filesystem", "{folder}"],
        needs_folder: true,
      },
      {
        id: "memory",
        title: "Memory",
        description: "A small knowledge graph.",
        command: "npx",
        args: ["-y", "@modelcontextprotocol/server-memory"],
        needs_folder: false,
      },
    ],
    sso: null,
  };
}

export function fail(code: ErrorCode, message: string): never {
  throw new ApiFailure(code, message);
}

export class FakeBackend implements Backend {
  state: FakeState;
  calls: Request[] = [];
  private handlers: Partial<Record<Call, Handler>> = {};
  private listeners = new Map<string, Set<(p: unknown) => void>>();
  latencyMs = 0;
  /** Set to act like the desktop shell (autostart, closing the prompt). */
  shell?: ShellCommands;

  constructor(state: Partial<FakeState> = {}) {
    this.state = { ...defaultState(), ...state };
  }

  /** Replaces the answer to one call. */
  handle(call: Call, handler: Handler): this {
    this.handlers[call] = handler;
    return this;
  }

  /** The requests made so far of one kind. */
  made<C extends Call>(call: C): Extract<Request, { call: C }>[] {
    return this.calls.filter((r) => r.call === call) as Extract<Request, { call: C }>[];
  }

  emit(event: string, payload: unknown = null) {
    for (const cb of this.listeners.get(event) ?? []) cb(payload);
  }

  on(event: string, cb: (payload: unknown) => void) {
    const set = this.listeners.get(event) ?? new Set();
    set.add(cb);
    this.listeners.set(event, set);
    return () => set.delete(cb);
  }

  async call(req: Request): Promise<Response> {
    this.calls.push(structuredClone(req));
    if (this.latencyMs) await new Promise((r) => setTimeout(r, this.latencyMs));
    const h = this.handlers[req.call];
    if (h) return h(req, this);
    return this.answer(req);
  }

  /** The fake's own answer, for a handler that only changes some. */
  answer(req: Request): Response {
    const s = this.state;
    const needUser = () => s.status.user ?? fail("unauthenticated", "sign in first");
    switch (req.call) {
      case "status":
        return { kind: "status", value: s.status };
      case "init":
        s.status = { ...s.status, initialized: true };
        return { kind: "enrolled", value: enrollment(req.admin) };
      case "login": {
        if (req.password !== s.password || (!req.recovery && req.totp !== "123456")) {
          fail("unauthenticated", "the name, password or code is not right; check them and try again");
        }
        const u = s.users.find((x) => x.name === req.name) ?? user(req.name);
        s.status = { ...s.status, user: u };
        return { kind: "signed_in", value: { user: u, token: "t", expires_s: 3600 } };
      }
      case "logout":
        s.status = { ...s.status, user: null };
        return { kind: "done" };
      case "whoami":
        return { kind: "me", value: needUser() };
      case "server_list":
        needUser();
        return { kind: "servers", value: s.servers };
      case "server_tools": {
        const list = s.tools[req.name];
        if (!list) fail("not_found", `no server is named "${req.name}"`);
        return { kind: "tools", value: list as never };
      }
      case "server_presets":
        return { kind: "presets", value: s.presets };
      case "server_add":
        s.servers = [
          ...s.servers,
          server(req.name, {
            target: req.spec.url ?? [req.spec.command, ...(req.spec.args ?? [])].join(" "),
            transport: req.spec.url ? "http" : "stdio",
          }),
        ];
        s.tools[req.name] = [tool("echo")];
        return { kind: "done" };
      case "server_remove":
        s.servers = s.servers.filter((x) => x.name !== req.name);
        return { kind: "done" };
      case "approvals":
        needUser();
        return { kind: "approvals", value: { version: s.version, requests: s.pending } };
      case "approval_decide": {
        const r = s.pending.find((p) => p.id === req.id);
        if (!r)
          fail("not_found", `there is no pending approval ${req.id}: it was already answered, withdrawn, or timed out`);
        if (r.risk === "critical" && req.choice !== "deny" && !req.totp)
          fail("unauthenticated", "this tool is critical: approving needs a fresh authenticator code");
        s.pending = s.pending.filter((p) => p.id !== req.id);
        s.version++;
        return { kind: "done" };
      }
      case "confirm":
        if (req.totp !== "123456")
          fail("unauthenticated", "wrong authenticator code: enter the current code from your authenticator app");
        return { kind: "done" };
      case "log": {
        let rows = s.activity;
        const f = req.filter;
        if (f.kind) rows = rows.filter((r) => r.kind === f.kind);
        if (f.before_id !== null && f.before_id !== undefined) rows = rows.filter((r) => r.id < f.before_id!);
        return { kind: "log", value: rows.slice(0, req.limit) };
      }
      case "activity_stats":
        return { kind: "day_counts", value: s.days };
      case "activity_export":
        return {
          kind: "exported",
          value: { path: `/home/alice/Downloads/warden-activity.${req.format}`, rows: s.activity.length },
        };
      case "role_list":
        return { kind: "roles", value: s.roles };
      case "enrol":
        if (req.code.replace(/[^a-z0-9]/gi, "").toLowerCase() !== "abcdefghijklmnopqrst") {
          fail(
            "unauthenticated",
            "that name and enrolment code do not match a waiting enrolment, or the code has expired; check them, or ask your admin for a new code",
          );
        }
        return { kind: "enrolled", value: enrollment(req.name) };
      case "user_add": {
        const u = { ...user(req.name, req.admin ? "admin" : "member", s.users.length + 10), invited: true };
        s.users = [...s.users, u];
        return {
          kind: "invited",
          value: { user: u, code: "abcde-fghij-klmno-pqrst", expires_s: Date.now() / 1000 + 72 * 3600 },
        };
      }
      case "user_list":
        return { kind: "users", value: s.users };
      case "agent_list":
        return { kind: "agents", value: s.agents };
      case "quarantined":
        return { kind: "pins", value: [] };
      case "agents_pause":
        s.status = { ...s.status, paused: req.paused };
        return { kind: "done" };
      case "password_change":
        if (req.current !== s.password) fail("unauthenticated", "your current password is not right");
        s.password = req.new;
        return { kind: "done" };
      case "recovery_renew":
        if (req.password !== s.password) fail("unauthenticated", "your password is not right: check it and try again");
        return { kind: "recovery_codes", value: Array.from({ length: 10 }, (_, i) => `new0${i}-code-${i}`) };
      case "totp_reenrol":
        if (req.password !== s.password) fail("unauthenticated", "your password is not right: check it and try again");
        return { kind: "enrolled", value: enrollment(needUser().name) };
      case "settings_approve": {
        if (req.hash === null) {
          return { kind: "settings", value: { held: s.status.held_settings, hash: "settings-1", approved_by: null } };
        }
        if (req.totp !== "123456") fail("unauthenticated", "that code is not right; check your authenticator app");
        s.status = { ...s.status, held_settings: [] };
        return { kind: "done" };
      }
      case "client_connect": {
        const a = agent(req.agent, s.agents.length + 1);
        s.agents = [...s.agents, a];
        return {
          kind: "client_connected",
          value: {
            agent: a,
            app: req.app,
            config_path: "/home/alice/.config/Claude/claude_desktop_config.json",
            backup_path: req.write ? "/home/alice/.config/Claude/claude_desktop_config.json.warden-backup" : null,
            snippet: JSON.stringify(
              { mcpServers: { warden: { command: "warden", args: ["connect", req.agent] } } },
              null,
              2,
            ),
            written: req.write,
          },
        };
      }
      case "sso_show":
        return { kind: "sso", value: s.sso };
      case "review":
        return {
          kind: "review",
          value: {
            generated_at_us: NOW_US(),
            last_review_at_us: null,
            interval_days: 90,
            due: true,
            people: [],
            agents: [],
            notes: [],
          },
        };
      default:
        return { kind: "done" };
    }
  }
}
