import { Alert, Button, Group, Text } from "@mantine/core";
import { IconAlertTriangle } from "@tabler/icons-react";
import { friendly, MfaCancelled } from "../errors";

/** A failure in plain words: what happened and what to do. */
export function ErrorAlert({
  error,
  onRetry,
  testId,
  title,
}: {
  error: unknown;
  onRetry?: () => void;
  testId?: string;
  /** Overrides the title that comes from the error's code. */
  title?: string;
}) {
  if (!error || error instanceof MfaCancelled) return null;
  const f = friendly(error);
  return (
    <Alert
      color="red"
      variant="light"
      icon={<IconAlertTriangle aria-hidden />}
      title={title ?? f.title}
      data-testid={testId}
      role="alert"
    >
      <Text size="sm">{f.detail}</Text>
      <Group justify="space-between" mt={4} wrap="nowrap">
        <Text size="sm" c="dimmed">
          {f.advice}
        </Text>
        {onRetry ? (
          <Button size="xs" variant="light" color="red" onClick={onRetry}>
            Try again
          </Button>
        ) : null}
      </Group>
    </Alert>
  );
}
