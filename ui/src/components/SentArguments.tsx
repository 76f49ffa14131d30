import { Button, Stack, Text } from "@mantine/core";
import { useState } from "react";
import type { JsonValue } from "../bindings/serde_json/JsonValue";
import { JsonBlock } from "./JsonBlock";

/** Strings longer than this are cut until the person asks to see them whole. */
const SHOWN_CHARS = 1024;

/** The paths (`content.api_key`) whose value the activity log masks. */
export function maskedPaths(logged: unknown, path = ""): string[] {
  if (typeof logged === "string") return logged.startsWith("[redacted:") ? [path || "(the value)"] : [];
  if (logged === null || typeof logged !== "object") return [];
  return Object.entries(logged as Record<string, unknown>).flatMap(([k, v]) =>
    maskedPaths(v, Array.isArray(logged) ? `${path}[${k}]` : path ? `${path}.${k}` : k),
  );
}

/** The value with every long string cut, and how many were cut. */
function cut(value: unknown): [unknown, number] {
  if (typeof value === "string" && value.length > SHOWN_CHARS) {
    return [`${value.slice(0, SHOWN_CHARS)}… (${value.length - SHOWN_CHARS} more characters)`, 1];
  }
  if (value === null || typeof value !== "object") return [value, 0];
  let n = 0;
  const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
    const [c, m] = cut(v);
    n += m;
    return [k, c] as const;
  });
  return [Array.isArray(value) ? entries.map(([, v]) => v) : Object.fromEntries(entries), n];
}

/** What a call will really send, for the person deciding on it: secrets the
 * log masks are shown and named, and long values are shown whole on request.
 * Falls back to the log's form when Warden did not send the real one (the
 * viewer is not the one who may approve). */
export function SentArguments({
  sent,
  logged,
  testId,
}: {
  sent: JsonValue | undefined;
  logged: JsonValue | null;
  testId?: string;
}) {
  const [whole, setWhole] = useState(false);
  const value = sent === undefined ? logged : sent;
  const [short, cuts] = cut(value);
  const masked = sent === undefined ? [] : maskedPaths(logged);
  return (
    <Stack gap={4}>
      <JsonBlock value={whole ? value : short} testId={testId} />
      {cuts > 0 ? (
        <Button variant="subtle" size="compact-xs" onClick={() => setWhole((w) => !w)} data-testid={`${testId}-whole`}>
          {whole ? "Show it shortened" : "Show every character"}
        </Button>
      ) : null}
      {masked.length > 0 ? (
        <Text size="xs" c="dimmed" data-testid={`${testId}-masked`}>
          Shown here as sent, but kept out of the activity log because it looks like a secret: {masked.join(", ")}
        </Text>
      ) : null}
      {sent === undefined && value !== null ? (
        <Text size="xs" c="dimmed">
          Secrets are masked here; only the person who may approve this sees them.
        </Text>
      ) : null}
    </Stack>
  );
}
