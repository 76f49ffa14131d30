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
  const what = kindLabel(r.kind).toLowerCase();
  const target = r.tool ?? r.server ?? r.agent;
  return `${r.on_behalf_of ?? who}: ${what}${target ? ` (${target})` : ""}`;
}

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
