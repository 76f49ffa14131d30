import { Group, Progress, Stack, Text } from "@mantine/core";
import { IconClock } from "@tabler/icons-react";
import { useEffect, useState } from "react";
import { clock } from "../time";

/** Time left before an unanswered request is denied. */
export function Countdown({
  requestedUs,
  expiresUs,
  testId,
}: {
  requestedUs: number;
  expiresUs: number;
  testId?: string;
}) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const left = (expiresUs / 1000 - now) / 1000;
  const total = Math.max(1, (expiresUs - requestedUs) / 1_000_000);
  const urgent = left < 30;
  return (
    <Stack gap={4}>
      <Group gap={6} wrap="nowrap">
        <IconClock size={16} aria-hidden />
        <Text size="sm" c={urgent ? "red" : "dimmed"} fw={urgent ? 600 : 400} data-testid={testId}>
          {left > 0 ? `Denied automatically in ${clock(left)}` : "Time is up: denied automatically"}
        </Text>
      </Group>
      <Progress
        value={Math.max(0, Math.min(100, (left / total) * 100))}
        color={urgent ? "red" : "blue"}
        size="xs"
        aria-hidden
      />
    </Stack>
  );
}
