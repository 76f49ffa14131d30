import { Group, Text } from "@mantine/core";
import { IconArrowRight } from "@tabler/icons-react";
import { Fragment } from "react";

/** A delegation chain: the person first, then every agent it passed through. */
export function DelegationChain({ chain }: { chain: string[] }) {
  return (
    <Group gap={4} wrap="wrap" aria-label={`Delegation chain: ${chain.join(", then ")}`}>
      {chain.map((who, i) => (
        <Fragment key={`${who}-${i}`}>
          {i > 0 ? <IconArrowRight size={14} aria-hidden /> : null}
          <Text size="sm" fw={i === 0 ? 600 : 400}>
            {who}
          </Text>
        </Fragment>
      ))}
    </Group>
  );
}

/** A chain as stored in the activity log (JSON array text, or plain text). */
export function parseChain(raw: string | null | undefined): string[] | null {
  if (!raw) return null;
  try {
    const v: unknown = JSON.parse(raw);
    if (Array.isArray(v)) return v.map(String);
  } catch {
    // not JSON: a plain list
  }
  return raw.split(/\s*(?:,|->|→|>)\s*/).filter(Boolean);
}
