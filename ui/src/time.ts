// Times from the API are microseconds since the epoch; people see local,
// relative times ("3 minutes ago") with the full time on hover.

export function fromUs(us: number): Date {
  return new Date(Math.floor(us / 1000));
}

export function toUs(d: Date): number {
  return d.getTime() * 1000;
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function relative(d: Date, now: Date = new Date()): string {
  const diff = Math.round((d.getTime() - now.getTime()) / 1000);
  if (Math.abs(diff) < 10) return "just now";
  for (const [unit, secs] of UNITS) {
    if (Math.abs(diff) >= secs || unit === "second") {
      return rtf.format(Math.round(diff / secs), unit);
    }
  }
  return rtf.format(diff, "second");
}

export function localTime(d: Date): string {
  return d.toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
}

/** "1:52" for a number of seconds (never negative). */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** A UTC day number (days since the epoch) as a short local date. */
export function dayLabel(day: number): string {
  return new Date(day * 86400000).toLocaleDateString(undefined, {
    month: "short",
    day: "numeric",
    timeZone: "UTC",
  });
}
