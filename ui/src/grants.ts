// Which roles reach a tool, by the same rules as warden-policy.
import type { GrantRow, Role } from "./types";

/** `*` matches any run of characters (including none), `?` exactly one. */
export function glob(pattern: string, text: string): boolean {
  const p = [...pattern];
  const t = [...text];
  let pi = 0;
  let ti = 0;
  let star: [number, number] | null = null;
  while (ti < t.length) {
    if (pi < p.length && p[pi] !== "*" && (p[pi] === "?" || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === "*") {
      star = [pi, ti];
      pi++;
    } else if (star) {
      pi = star[0] + 1;
      ti = star[1] + 1;
      star = [star[0], star[1] + 1];
    } else {
      return false;
    }
  }
  return p.slice(pi).every((c) => c === "*");
}

export interface ToolGrant {
  role: string;
  grant: GrantRow;
  /** Names this tool on this server exactly (editable in place). */
  exact: boolean;
}

export function grantsFor(roles: Role[], server: string, tool: string): ToolGrant[] {
  const out: ToolGrant[] = [];
  for (const role of roles) {
    for (const g of role.grants) {
      if (!(g.server === "*" || g.server === server)) continue;
      if (!(g.pattern === "*" || glob(g.pattern, tool))) continue;
      out.push({ role: role.name, grant: g, exact: g.server === server && g.pattern === tool });
    }
  }
  return out;
}

export const EFFECTS = [
  { value: "allow", label: "May use it", color: "teal" },
  { value: "ask", label: "Must ask first", color: "orange" },
  { value: "deny", label: "May not use it", color: "red" },
];

export function effectLook(effect: string) {
  return EFFECTS.find((e) => e.value === effect) ?? { value: effect, label: effect, color: "gray" };
}
