import { Badge, Text } from "@mantine/core";
import type { ServerInfo } from "../types";

const LOOK: Record<string, { label: string; color: string }> = {
  starting: { label: "Starting", color: "blue" },
  ready: { label: "Ready", color: "teal" },
  failed: { label: "Not working", color: "red" },
  stopped: { label: "Stopped", color: "gray" },
  blocked: { label: "Needs your OK", color: "orange" },
};

export function serverState(s: ServerInfo): string {
  return (s as { state?: string }).state ?? "stopped";
}

/** Why a server is not working or blocked, when it says. */
export function serverProblem(s: ServerInfo): string | null {
  const x = s as { error?: string; reason?: string };
  return x.error ?? x.reason ?? null;
}

export function ServerStatusBadge({ server }: { server: ServerInfo }) {
  const state = serverState(server);
  const look = LOOK[state] ?? { label: state, color: "gray" };
  return (
    <Badge color={look.color} variant="light" data-testid="server-status">
      {look.label}
    </Badge>
  );
}

/** A server's problem in plain words, with what to do about it. */
export function ServerProblem({ server }: { server: ServerInfo }) {
  const state = serverState(server);
  const why = serverProblem(server);
  if (state === "failed" && server.transport !== "stdio" && why && /server login/.test(why)) {
    return (
      <Text size="sm" c="red.8" data-testid="server-needs-signin">
        Warden is not signed in to this server, or its sign-in ended, so its tools are unavailable. An admin signs in
        again below.
      </Text>
    );
  }
  if (state === "failed") {
    return (
      <Text size="sm" c="red.8">
        Warden could not start or reach this server{why ? `: ${why}` : ""}. Check that the program is installed (or the
        address is right), then restart Warden or remove and add the server again.
      </Text>
    );
  }
  if (state === "blocked") {
    return (
      <Text size="sm" c="orange.9">
        This server has not started because an admin has not approved its exact command yet
        {why ? ` (${why})` : ""}.
      </Text>
    );
  }
  return null;
}

/** What the authorization probe found, in words. */
export function probeWords(verdict: string | null | undefined): string | null {
  if (!verdict) return null;
  if (verdict === "enforcing") return "Refuses callers without a valid sign-in (good).";
  if (verdict === "not enforcing") return "Lets callers in without a valid sign-in: Warden guards it.";
  if (verdict === "no authorization") return "Asks for no sign-in at all: Warden guards it.";
  return verdict;
}
