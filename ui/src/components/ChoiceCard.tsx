import { Card, Group, Stack, Text, ThemeIcon, UnstyledButton } from "@mantine/core";
import type { ReactNode } from "react";

/** A large selectable card (one of a few options), a toggle button for assistive tech. */
export function ChoiceCard({
  selected,
  onClick,
  icon,
  title,
  text,
  testId,
}: {
  selected: boolean;
  onClick: () => void;
  icon: ReactNode;
  title: string;
  text: string;
  testId: string;
}) {
  return (
    <UnstyledButton
      onClick={onClick}
      data-testid={testId}
      aria-pressed={selected}
      style={{ display: "block", height: "100%", borderRadius: "var(--mantine-radius-md)" }}
    >
      <Card
        h="100%"
        style={
          selected
            ? {
                borderColor: "var(--mantine-color-blue-6)",
                boxShadow: "0 0 0 1px var(--mantine-color-blue-6)",
                background: "var(--mantine-color-blue-0)",
              }
            : undefined
        }
      >
        <Group wrap="nowrap" align="flex-start">
          <ThemeIcon variant={selected ? "filled" : "light"} size="lg" aria-hidden>
            {icon}
          </ThemeIcon>
          <Stack gap={2}>
            <Text fw={600}>{title}</Text>
            <Text size="sm" c="dimmed">
              {text}
            </Text>
          </Stack>
        </Group>
      </Card>
    </UnstyledButton>
  );
}
