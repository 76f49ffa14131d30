// The "Connect a server" wizard's rules, apart from its screens so they
// can be tested on their own.
import type { ServerPreset, ServerSpec } from "./types";

export type ServerKind = "local" | "remote";

export interface WizardState {
  kind: ServerKind | null;
  /** A preset's id, or "custom" for a command typed by hand. */
  preset: string | null;
  name: string;
  /** Set once the person edits the name, so picking a preset no longer changes it. */
  nameEdited: boolean;
  folder: string;
  command: string;
  /** Custom arguments, one per line. */
  args: string;
  url: string;
}

export const START: WizardState = {
  kind: null,
  preset: null,
  name: "",
  nameEdited: false,
  folder: "",
  command: "",
  args: "",
  url: "",
};

/** Server names: 1–32 lowercase letters, digits and single hyphens. */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 32)
    .replace(/-$/, "");
}

export function nameProblem(name: string): string | null {
  if (!name) return "Give the server a name.";
  if (name.length > 32 || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) {
    return 'Use 1 to 32 lowercase letters, digits and single hyphens, for example "files" or "github-work".';
  }
  return null;
}

/** A name from a remote address: its host, without "www." or "mcp.". */
export function nameFromUrl(url: string): string {
  try {
    const host = new URL(url).hostname.replace(/^(www|mcp|api)\./, "");
    return slug(host.split(".")[0] ?? "");
  } catch {
    return "";
  }
}

export function urlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return "Enter the server's full address, starting with https://";
  }
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(u.hostname);
  if (u.protocol === "https:" || (u.protocol === "http:" && loopback)) return null;
  return "Remote servers must use https:// (plain http:// works only for this computer).";
}

export function choosePreset(s: WizardState, preset: ServerPreset | "custom"): WizardState {
  const id = preset === "custom" ? "custom" : preset.id;
  return { ...s, preset: id, name: s.nameEdited ? s.name : preset === "custom" ? "" : slug(preset.id) };
}

/** Why the person cannot go on from `step` yet; null when they can. */
export function stepProblem(step: number, s: WizardState, presets: ServerPreset[]): string | null {
  if (step === 0) return s.kind ? null : "Choose where the server runs.";
  if (step !== 1) return null;
  if (s.kind === "remote") return urlProblem(s.url) ?? nameProblem(s.name);
  if (!s.preset) return "Choose a server from the list, or enter a command.";
  if (s.preset === "custom") {
    if (!s.command.trim()) return "Enter the command that starts the server.";
  } else {
    const p = presets.find((x) => x.id === s.preset);
    if (!p) return "That server is no longer offered; choose another.";
    if (p.needs_folder && !s.folder.trim()) return "Choose the folder the server may use.";
  }
  return nameProblem(s.name);
}

/** What `server_add` gets. */
export function buildSpec(s: WizardState, presets: ServerPreset[]): ServerSpec {
  const empty: ServerSpec = { command: null, args: [], cwd: null, env: {}, url: null, headers: {} };
  if (s.kind === "remote") return { ...empty, url: s.url.trim() };
  if (s.preset === "custom") {
    const args = s.args
      .split("\n")
      .map((a) => a.trim())
      .filter(Boolean);
    return { ...empty, command: s.command.trim(), args };
  }
  const p = presets.find((x) => x.id === s.preset);
  if (!p) throw new Error(`no preset ${s.preset}`);
  return { ...empty, command: p.command, args: p.args.map((a) => (a === "{folder}" ? s.folder.trim() : a)) };
}

/** The remote sign-in's steps, in order, as the person sees them. */
export const SIGN_IN_STEPS = [
  "Finding the server's sign-in service",
  "Registering Warden with it",
  "Waiting for you to sign in in your browser",
  "Collecting the sign-in",
  "Checking that the server refuses strangers",
] as const;
