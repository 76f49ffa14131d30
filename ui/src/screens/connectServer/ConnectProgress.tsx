import { Button, Card, Group, Loader, Stack, Text, ThemeIcon, Timeline } from "@mantine/core";
import { IconCheck, IconX } from "@tabler/icons-react";
import { CopyField } from "../../components/CopyField";
import { ErrorAlert } from "../../components/ErrorAlert";
import { SIGN_IN_STEPS, type ServerKind } from "../../wizard";

export type Progress =
  | { phase: "idle" }
  | { phase: "adding" }
  | { phase: "signin-start" }
  | { phase: "signin-wait"; url: string; issuer: string }
  | { phase: "probe" }
  | { phase: "done"; signIn: "none" | "not-needed" | "signed-in"; verdict?: string }
  | { phase: "error"; error: unknown; added: boolean; at: Progress["phase"] };

type StepState = "done" | "active" | "todo" | "failed";

/** Each remote sign-in step's state for a phase. */
export function signInSteps(p: Progress): StepState[] {
  const phase = p.phase === "error" ? p.at : p.phase;
  const [done, active]: [number, number[]] =
    phase === "signin-start"
      ? [0, [0, 1]]
      : phase === "signin-wait"
        ? [2, [2, 3]]
        : phase === "probe"
          ? [4, [4]]
          : phase === "done"
            ? [5, []]
            : [0, []];
  return SIGN_IN_STEPS.map((_, i) =>
    i < done && !active.includes(i)
      ? "done"
      : active.includes(i)
        ? p.phase === "error"
          ? "failed"
          : "active"
        : "todo",
  );
}

export function ConnectProgress({
  kind,
  progress,
  onRetry,
  onBack,
}: {
  kind: ServerKind;
  progress: Progress;
  onRetry: () => void;
  onBack: () => void;
}) {
  const failed = progress.phase === "error";
  const adding = progress.phase === "adding" || (failed && progress.at === "adding");
  const steps = signInSteps(progress);
  return (
    <Card data-testid="wizard-progress">
      <Stack>
        <Group gap="sm">
          {adding && !failed ? (
            <Loader size="sm" />
          ) : failed && adding ? (
            <ThemeIcon color="red" radius="xl" size="sm">
              <IconX size={14} />
            </ThemeIcon>
          ) : (
            <ThemeIcon color="teal" radius="xl" size="sm">
              <IconCheck size={14} />
            </ThemeIcon>
          )}
          <Text fw={500}>{kind === "local" ? "Adding the server and starting it" : "Adding the server"}</Text>
        </Group>
        {kind === "remote" && !adding ? (
          <Timeline
            active={steps.lastIndexOf("done") + (steps.includes("active") || steps.includes("failed") ? 1 : 0)}
            bulletSize={22}
            lineWidth={2}
          >
            {SIGN_IN_STEPS.map((label, i) => (
              <Timeline.Item
                key={label}
                title={label}
                color={steps[i] === "failed" ? "red" : undefined}
                bullet={
                  steps[i] === "failed" ? (
                    <IconX size={12} />
                  ) : steps[i] === "active" ? (
                    <Loader size={12} color="white" />
                  ) : steps[i] === "done" ? (
                    <IconCheck size={12} />
                  ) : null
                }
                data-state={steps[i]}
              >
                {i === 2 && progress.phase === "signin-wait" ? (
                  <Stack gap={4} mt={4}>
                    <Text size="sm" c="dimmed">
                      Your browser opened the sign-in page{progress.issuer ? ` of ${progress.issuer}` : ""}. Sign in
                      there and allow Warden; this continues by itself. If your browser did not open, copy this address
                      into it:
                    </Text>
                    <CopyField value={progress.url} label="the sign-in address" testId="wizard-signin-url" />
                  </Stack>
                ) : null}
              </Timeline.Item>
            ))}
          </Timeline>
        ) : null}
        {failed ? (
          <>
            <ErrorAlert error={progress.error} />
            <Group justify="space-between">
              <Button variant="default" onClick={onBack} disabled={progress.added}>
                Back
              </Button>
              <Button onClick={onRetry} data-testid="wizard-retry">
                Try again
              </Button>
            </Group>
            {progress.added ? (
              <Text size="xs" c="dimmed">
                The server was added; trying again repeats only the step that failed.
              </Text>
            ) : null}
          </>
        ) : null}
      </Stack>
    </Card>
  );
}
