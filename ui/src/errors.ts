import { ApiFailure, toFailure } from "./backend";
import type { ErrorCode } from "./types";

/** A plain sentence for each kind of failure: what happened, what to do. */
const PREFIX: Record<ErrorCode, { title: string; advice: string }> = {
  invalid_input: {
    title: "Something in the form needs a change",
    advice: "Check what you entered and try again.",
  },
  not_found: {
    title: "That is no longer there",
    advice: "It may have been removed or answered elsewhere. Refresh and try again.",
  },
  conflict: {
    title: "That already exists or changed meanwhile",
    advice: "Pick another name, or refresh to see the latest.",
  },
  unavailable: {
    title: "Warden could not reach it right now",
    advice: "Wait a moment and try again. If it keeps happening, restart Warden.",
  },
  unauthenticated: {
    title: "Warden needs to know it is you",
    advice: "Sign in again, or check the code from your authenticator app.",
  },
  forbidden: {
    title: "You are not allowed to do that",
    advice: "Ask an admin if you need it.",
  },
  mfa_required: {
    title: "Confirm it is you",
    advice: "Enter the 6-digit code from your authenticator app.",
  },
  locked: {
    title: "Warden is locked",
    advice: "Sign in with your password: Warden opens its records with it once after it starts.",
  },
  internal: {
    title: "Something went wrong inside Warden",
    advice: "Try again. If it keeps happening, restart Warden.",
  },
};

export interface Friendly {
  code: ErrorCode;
  title: string;
  /** The API's own words, first letter capitalised, ending in a full stop. */
  detail: string;
  advice: string;
}

function sentence(s: string): string {
  const t = s.trim();
  if (!t) return "";
  const first = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

export function friendly(e: unknown): Friendly {
  const f: ApiFailure = toFailure(e);
  const p = PREFIX[f.code] ?? PREFIX.internal;
  return { code: f.code, title: p.title, detail: sentence(f.message), advice: p.advice };
}

/** One line for notifications: "Title: detail". */
export function errorLine(e: unknown): string {
  const f = friendly(e);
  return `${f.title}: ${f.detail}`;
}

export function isCode(e: unknown, code: ErrorCode): boolean {
  return toFailure(e).code === code;
}

/** The person closed the code dialog: the change did not happen (nothing to show). */
export class MfaCancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "MfaCancelled";
  }
}
