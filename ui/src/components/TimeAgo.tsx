import { Text, Tooltip, type TextProps } from "@mantine/core";
import { useEffect, useState } from "react";
import { fromUs, localTime, relative } from "../time";

/** A time from the API, relative ("5 minutes ago"), full local time on hover. */
export function TimeAgo({ us, ...props }: { us: number | null | undefined } & TextProps) {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), 30_000);
    return () => clearInterval(t);
  }, []);
  if (us === null || us === undefined) {
    return (
      <Text span size="sm" c="dimmed" {...props}>
        never
      </Text>
    );
  }
  const d = fromUs(us);
  return (
    <Tooltip label={localTime(d)} openDelay={300}>
      <Text span size="sm" {...props}>
        <time dateTime={d.toISOString()}>{relative(d, now)}</time>
      </Text>
    </Tooltip>
  );
}
