import { Progress, Stack, Text } from "@mantine/core";

/** A rough strength score (0–4) and what would make the password better. */
export function strength(pw: string): { score: number; hint: string } {
  if (!pw) return { score: 0, hint: "Use at least 12 characters; a few unrelated words work well." };
  let score = 0;
  if (pw.length >= 12) score++;
  if (pw.length >= 16) score++;
  const kinds = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((r) => r.test(pw)).length;
  if (kinds >= 2) score++;
  if (kinds >= 3 && pw.length >= 12) score++;
  if (/^(.)\1+$/.test(pw) || /^(password|123456|qwerty)/i.test(pw)) score = 0;
  const hint =
    pw.length < 12
      ? `Too short: ${12 - pw.length} more character${12 - pw.length === 1 ? "" : "s"}, please.`
      : score >= 4
        ? "Strong password."
        : score === 3
          ? "Good. A little longer would be even better."
          : "Fair. Mix in other words, numbers or symbols.";
  return { score, hint };
}

const COLORS = ["red", "red", "orange", "yellow", "teal"];

export function PasswordStrength({ password }: { password: string }) {
  const { score, hint } = strength(password);
  return (
    <Stack gap={4}>
      <Progress value={(score / 4) * 100} color={COLORS[score]} size="sm" aria-label="Password strength" />
      <Text size="xs" c="dimmed" aria-live="polite">
        {hint}
      </Text>
    </Stack>
  );
}
