// Tools whose definition changed (or that are new) wait here, hidden from
// agents, until an admin reads the change and accepts or rejects it.
import { useState } from "react";
import { Alert, Button, Card, Group, Stack, Text, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconAlertTriangle } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../../api";
import { errorLine } from "../../errors";
import type { Pin } from "../../types";
import { DiffView } from "../DiffView";
import { ErrorAlert } from "../ErrorAlert";
import { TimeAgo } from "../TimeAgo";

export function QuarantinePanel() {
  const pins = useCall(keys.quarantined, { call: "quarantined" }, "pins");
  if (pins.isError) return <ErrorAlert error={pins.error} onRetry={() => void pins.refetch()} />;
  const held = (pins.data ?? []).filter((p) => p.state === "quarantined");
  if (held.length === 0) return null;
  return (
    <Card data-testid="quarantine">
      <Group gap="xs" mb="sm">
        <IconAlertTriangle color="var(--mantine-color-orange-6)" aria-hidden />
        <Title order={3} size="h4">
          {held.length} tool{held.length === 1 ? "" : "s"} held for your review
        </Title>
      </Group>
      <Text size="sm" c="dimmed" mb="md">
        A server changed these tools after they were approved, or added new ones. Agents cannot see or use them until
        you accept the new version.
      </Text>
      <Stack>
        {held.map((p) => (
          <HeldTool key={`${p.server}/${p.tool}`} pin={p} />
        ))}
      </Stack>
    </Card>
  );
}

function HeldTool({ pin }: { pin: Pin }) {
  const call = useAsk();
  const [open, setOpen] = useState(false);
  const review = useCall(
    ["tool_review", pin.server, pin.tool],
    { call: "tool_review", server: pin.server, tool: pin.tool },
    "tool_review",
    {
      enabled: open,
    },
  );
  const decide = useAction(
    (accept: boolean) =>
      call(
        {
          call: "tool_decide",
          server: pin.server,
          tool: pin.tool,
          hash: review.data?.pin.seen_hash ?? pin.seen_hash,
          accept,
        },
        "done",
      ),
    {
      invalidate: [keys.quarantined, keys.tools(pin.server)],
      onSuccess: (_, accept) =>
        notifications.show({
          color: accept ? "teal" : "gray",
          message: accept ? `${pin.tool} is available again.` : `${pin.tool} stays blocked.`,
        }),
      onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
    },
  );
  return (
    <Stack gap="xs" data-testid={`held-${pin.server}-${pin.tool}`}>
      <Group justify="space-between">
        <Text size="sm">
          <b>{pin.tool}</b> on {pin.server}: {pin.reason === "new" ? "new tool" : "its definition changed"}{" "}
          <TimeAgo us={pin.updated_at_us} c="dimmed" />
        </Text>
        <Button size="xs" variant="light" onClick={() => setOpen((o) => !o)}>
          {open ? "Hide the change" : "Show the change"}
        </Button>
      </Group>
      {open ? (
        review.isPending ? (
          <Text size="sm">Loading…</Text>
        ) : review.isError ? (
          <ErrorAlert error={review.error} />
        ) : (
          <Stack gap="xs">
            <Alert color="gray" variant="light" p="xs">
              <Text size="xs">
                Red lines were in the version you approved; green lines are what the server presents now.
              </Text>
            </Alert>
            <DiffView diff={review.data.diff} />
            <Group justify="flex-end">
              <Button
                color="red"
                variant="light"
                size="xs"
                onClick={() => decide.mutate(false)}
                loading={decide.isPending && decide.variables === false}
                data-testid="tool-reject"
              >
                Reject: keep it blocked
              </Button>
              <Button
                color="teal"
                size="xs"
                onClick={() => decide.mutate(true)}
                loading={decide.isPending && decide.variables === true}
                data-testid="tool-accept"
              >
                Accept the new version
              </Button>
            </Group>
          </Stack>
        )
      ) : null}
    </Stack>
  );
}
