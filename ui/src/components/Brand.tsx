import { Group, Text, ThemeIcon } from "@mantine/core";
import { IconShieldCheck } from "@tabler/icons-react";

export function Brand({ size = "md" }: { size?: "md" | "lg" }) {
  const big = size === "lg";
  return (
    <Group gap="xs" wrap="nowrap">
      <ThemeIcon size={big ? 44 : 32} radius="md" variant="filled" color="blue" aria-hidden>
        <IconShieldCheck size={big ? 28 : 20} />
      </ThemeIcon>
      <Text fw={700} size={big ? "xl" : "lg"}>
        Warden
      </Text>
    </Group>
  );
}
