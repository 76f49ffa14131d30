import { Code, ScrollArea, Text } from "@mantine/core";

/** Arguments or other JSON, pretty-printed for reading. */
export function pretty(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

export function JsonBlock({
  value,
  testId,
  maxHeight = 220,
  empty = "No arguments",
}: {
  value: unknown;
  testId?: string;
  maxHeight?: number;
  empty?: string;
}) {
  const isEmpty =
    value === null ||
    value === undefined ||
    value === "" ||
    (typeof value === "object" && Object.keys(value as object).length === 0);
  if (isEmpty) {
    return (
      <Text size="sm" c="dimmed" data-testid={testId}>
        {empty}
      </Text>
    );
  }
  return (
    <ScrollArea.Autosize mah={maxHeight} type="auto">
      <Code block data-testid={testId} style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
        {pretty(value)}
      </Code>
    </ScrollArea.Autosize>
  );
}
