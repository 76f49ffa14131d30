// Activity log rows in plain words.
import type { ActivityRow } from "./types";

export const KINDS: { value: string; label: string }[] = [
  { value: "tool_call.requested", label: "Tool calls" },
  { value: "tool_call.completed", label: "Tool call results" },
  { value: "approval.decided", label: "Approval decisions" },
  { value: "resource_read.requested", label: "Resources read" },
  { value: "prompt_get.requested", label: "Prompts used" },
  { value: "server.status", label: "Server status changes" },
  { value: "server.added", label: "Servers added" },
  { value: "server.removed", label: "Servers removed" },
  { value: "agent.created", label: "Agents created" },
  { value: "agent.revoked", label: "Agents revoked" },
  { value: "person.created", label: "People added" },
  { value: "auth.sign_in", label: "Sign-ins" },
  { value: "auth.sign_in_failed", label: "Failed sign-ins" },
  { value: "access.refused", label: "Refused actions" },
];

const KIND_LABEL = new Map(KINDS.map((k) => [k.value, k.label]));

export function kindLabel(kind: string): string {
  return KIND_LABEL.get(kind) ?? kind.replace(/[._]/g, " ");
}

export const DECISIONS: { value: string; label: string; color: string }[] = [
  { value: "allow", label: "Allowed", color: "teal" },
  { value: "ask", label: "Asked a person", color: "orange" },
  { value: "deny", label: "Denied", color: "red" },
];

const CHOICE_WORDS: Record<string, string> = {
  once: "once",
  session: "for the session",
  always: "always, for these arguments",
};

/** Who let a call through, and how: "by ana, once", "standing approval". */
export function approverWords(r: ActivityRow): string | null {
  const by = r.approver;
  if (!by) return null;
  if (by.startsWith("standing approval")) return "always, for these arguments (a standing approval)";
  if (by === "session approval") return "for the session (approved earlier)";
  let choice: string | undefined;
  try {
    const detail = r.detail ? (JSON.parse(r.detail) as { choice?: unknown }) : {};
    choice = typeof detail.choice === "string" ? CHOICE_WORDS[detail.choice] : undefined;
  } catch {
    choice = undefined;
  }
  return choice ? `by ${by}, ${choice}` : `by ${by}`;
}

export function decisionLook(decision: string | null): { label: string; color: string } {
  return DECISIONS.find((d) => d.value === decision) ?? { label: decision ?? "—", color: "gray" };
}

/** One sentence: who did what, where. */
export function describeRow(r: ActivityRow): string {
  const who = r.agent ?? r.on_behalf_of ?? "Someone";
  if (r.kind.endsWith(".requested") && r.tool) {
    return `${who} called ${r.tool}${r.server ? ` on ${r.server}` : ""}`;
  }
  if (r.kind === "approval.decided") {
    return `${r.approver ?? "Warden"} answered ${who}'s call to ${r.tool ?? "a tool"}`;
  }
  if (r.kind === "server.status") {
    return `${r.server ?? "A server"} is now ${r.outcome ?? "changed"}`;
  }
  const actor = r.on_behalf_of ?? who;
  const target = changeTarget(r) ?? r.tool ?? r.server ?? r.agent;
  const sentence = SENTENCES[r.kind];
  if (sentence) return sentence(actor, target);
  const what = kindLabel(r.kind).toLowerCase();
  return `${actor}: ${what}${target ? ` (${target})` : ""}`;
}

/** What an admin's change was about (its `detail.target`). */
function changeTarget(r: ActivityRow): string | null {
  if (!r.detail) return null;
  try {
    const d = JSON.parse(r.detail) as { target?: unknown };
    return typeof d.target === "string" ? d.target : null;
  } catch {
    return null;
  }
}

const SENTENCES: Record<string, (actor: string, target: string | null) => string> = {
  "auth.sign_in": (a) => `${a} signed in`,
  "auth.sign_out": (a) => `${a} signed out`,
  "auth.sign_in_failed": (a) => `A sign-in as ${a} failed`,
  "auth.first_code_failed": (a) => `${a}'s first code from a newly set up authenticator app did not work`,
  "person.created": (a, t) => (t && t !== a ? `${a} added ${t}` : `${a} was added as the first admin`),
  "person.disabled": (a, t) => `${a} disabled ${t ?? "a person"}`,
  "person.enabled": (a, t) => `${a} enabled ${t ?? "a person"}`,
  "person.removed": (a, t) => `${a} removed ${t ?? "a person"}`,
  "agent.created": (a, t) => `${a} created the agent ${t ?? ""}`.trim(),
  "agent.revoked": (a, t) => `${a} revoked the agent ${t ?? ""}`.trim(),
  "agent.rotated": (a, t) => `${a} gave the agent ${t ?? ""} a new credential`.replace("  ", " "),
  "server.added": (a, t) => `${a} connected the server ${t ?? ""}`.trim(),
  "server.removed": (a, t) => `${a} removed the server ${t ?? ""}`.trim(),
  "role.created": (a, t) => `${a} created the role ${t ?? ""}`.trim(),
  "role.grant_set": (a, t) => `${a} changed what the role ${t ?? ""} may use`.replace("  ", " "),
  "role.grant_removed": (a, t) => `${a} changed what the role ${t ?? ""} may use`.replace("  ", " "),
  "client.configured": (a, t) => `${a} connected an AI app as ${t ?? "an agent"}`,
  "agents.paused": (a) => `${a} paused every agent`,
  "agents.unpaused": (a) => `${a} resumed every agent`,
  "sso.configured": (a) => `${a} changed the single sign-on settings`,
  "config.change_held": () => "Warden kept the approved settings: the configuration file asks for looser ones",
  "config.change_approved": (a) => `${a} approved the settings in the configuration file`,
  "server.command_approved": (a, t) => `${a} approved what the server ${t ?? ""} runs or is sent`.replace("  ", " "),
};

const OUTCOMES: Record<string, string> = {
  ok: "Done",
  tool_error: "The tool reported an error",
  error: "The server answered with an error",
  refused: "Refused",
  quarantined: "Held for review",
  approved: "Allowed by a person",
  denied: "Denied by a person",
  timed_out: "No answer in time: denied",
  withdrawn: "Cancelled by the app",
  ready: "Ready",
  failed: "Stopped working",
  blocked: "Waiting for an admin's OK",
  stopped: "Stopped",
  starting: "Starting",
};

/** A call's outcome in words ("failed: …" keeps its reason). */
export function outcomeWords(outcome: string | null): string {
  if (!outcome) return "—";
  if (outcome.startsWith("failed: ")) return `Failed: ${outcome.slice(8)}`;
  return OUTCOMES[outcome] ?? outcome;
}
