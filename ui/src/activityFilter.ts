// The Activity screen's filters as the person sets them, and the API's
// LogFilter they become.
import type { LogFilter } from "./types";
import { toUs } from "./time";

export const EMPTY_FILTER: LogFilter = {
  person: null,
  agent: null,
  server: null,
  tool: null,
  kind: null,
  decision: null,
  risk: null,
  since_us: null,
  until_us: null,
  search: null,
  before_id: null,
};

export interface ActivityFilters {
  person: string | null;
  agent: string | null;
  server: string | null;
  tool: string;
  kind: string | null;
  decision: string | null;
  risk: string | null;
  /** Local calendar days ("2026-05-01"), inclusive at both ends. */
  from: string | null;
  to: string | null;
  search: string;
}

export const NO_FILTERS: ActivityFilters = {
  person: null,
  agent: null,
  server: null,
  tool: "",
  kind: null,
  decision: null,
  risk: null,
  from: null,
  to: null,
  search: "",
};

const text = (s: string | null | undefined) => {
  const t = (s ?? "").trim();
  return t ? t : null;
};

/** Midnight at the start of a local calendar day ("YYYY-MM-DD"), `plus` days later. */
function localDay(day: string, plus = 0): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(day);
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plus);
}

/**
 * The request filter: blanks become null, the date range covers whole
 * local days (the end day included), and a person filter is sent only by
 * admins (members always see their own).
 */
export function toLogFilter(f: ActivityFilters, opts: { admin: boolean; beforeId?: number | null }): LogFilter {
  const since = f.from ? localDay(f.from) : null;
  const until = f.to ? localDay(f.to, 1) : null;
  return {
    person: opts.admin ? text(f.person) : null,
    agent: text(f.agent),
    server: text(f.server),
    tool: text(f.tool),
    kind: text(f.kind),
    decision: text(f.decision),
    risk: text(f.risk),
    since_us: since ? toUs(since) : null,
    until_us: until ? toUs(until) : null,
    search: text(f.search),
    before_id: opts.beforeId ?? null,
  };
}

/** How many filters are set (for the "Clear filters" button). */
export function activeCount(f: ActivityFilters): number {
  return [f.person, f.agent, f.server, text(f.tool), f.kind, f.decision, f.risk, f.from, f.to, text(f.search)].filter(
    (v) => v !== null && v !== "",
  ).length;
}
