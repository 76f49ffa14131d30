import { Alert, Badge, Button, Card, Group, Skeleton, Stack, Table, Text, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { keys, useAction, useAsk, useCall } from "../../api";
import { ErrorAlert } from "../../components/ErrorAlert";
import { TimeAgo } from "../../components/TimeAgo";

const FLAGS: Record<string, { label: string; color: string; why: string }> = {
  unused: {
    label: "Unused",
    color: "gray",
    why: "It has not made a call in a long time: revoke it if nobody needs it.",
  },
  expired: { label: "Expired", color: "red", why: "Its credential has expired: rotate it or revoke the agent." },
  expiring: { label: "Expires soon", color: "orange", why: "Its credential expires within a week: rotate it." },
  orphaned: { label: "No owner", color: "red", why: "The person it acted for is gone or disabled." },
  over_privileged: {
    label: "More access than used",
    color: "orange",
    why: "Its roles allow high-risk tools it never used: consider a narrower role.",
  },
};

export function ReviewTab() {
  const call = useAsk();
  const review = useCall(keys.review, { call: "review", record: false }, "review");
  const done = useAction(() => call({ call: "review", record: true }, "review"), {
    invalidate: [keys.review],
    onSuccess: () =>
      notifications.show({ color: "teal", message: "Review recorded. Warden reminds you when the next one is due." }),
  });
  if (review.isPending) return <Skeleton h={200} />;
  if (review.isError) return <ErrorAlert error={review.error} onRetry={() => void review.refetch()} />;
  const r = review.data;
  const flagged = r.agents.filter((a) => a.flags.length > 0);
  return (
    <Stack>
      <Alert
        color={r.due ? "orange" : "teal"}
        variant="light"
        title={r.due ? "A review is due" : "Reviews are up to date"}
      >
        <Group justify="space-between">
          <Text size="sm">
            Look through who has access every {r.interval_days} days. Last review:{" "}
            {r.last_review_at_us ? <TimeAgo us={r.last_review_at_us} /> : "never"}.
          </Text>
          <Button size="xs" onClick={() => done.mutate(undefined)} loading={done.isPending} data-testid="review-record">
            I reviewed everything
          </Button>
        </Group>
      </Alert>
      <ErrorAlert error={done.error} />
      {r.notes.map((n) => (
        <Alert key={n} color="gray" variant="light">
          {n}
        </Alert>
      ))}
      <Card>
        <Title order={3} size="h5" mb="sm">
          Agents {flagged.length ? `(${flagged.length} need a look)` : ""}
        </Title>
        <Table.ScrollContainer minWidth={700}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Agent</Table.Th>
                <Table.Th>Acts for</Table.Th>
                <Table.Th>Roles</Table.Th>
                <Table.Th>Last used</Table.Th>
                <Table.Th>Needs a look</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {r.agents.map((a) => (
                <Table.Tr key={a.name} data-testid={`review-agent-${a.name}`}>
                  <Table.Td fw={500}>{a.name}</Table.Td>
                  <Table.Td>{a.owner ?? "—"}</Table.Td>
                  <Table.Td>{a.roles.join(", ") || "—"}</Table.Td>
                  <Table.Td>
                    <TimeAgo us={a.last_used_us} />
                  </Table.Td>
                  <Table.Td>
                    <Group gap={4}>
                      {a.flags.map((f) => {
                        const look = FLAGS[f] ?? { label: f, color: "gray", why: f };
                        return (
                          <Tooltip
                            key={f}
                            label={
                              f === "over_privileged" && a.unused_high_risk_tools.length
                                ? `${look.why} (${a.unused_high_risk_tools.join(", ")})`
                                : look.why
                            }
                            multiline
                            w={280}
                          >
                            <Badge color={look.color} variant="light" tabIndex={0}>
                              {look.label}
                            </Badge>
                          </Tooltip>
                        );
                      })}
                      {a.flags.length === 0 ? (
                        <Text size="sm" c="dimmed">
                          Fine
                        </Text>
                      ) : null}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Card>
      <Card>
        <Title order={3} size="h5" mb="sm">
          People
        </Title>
        <Table>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Name</Table.Th>
              <Table.Th>Role</Table.Th>
              <Table.Th>Status</Table.Th>
              <Table.Th>Last sign-in</Table.Th>
              <Table.Th>Agents</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {r.people.map((p) => (
              <Table.Tr key={p.name}>
                <Table.Td fw={500}>{p.name}</Table.Td>
                <Table.Td>{p.role}</Table.Td>
                <Table.Td>{p.status}</Table.Td>
                <Table.Td>
                  <TimeAgo us={p.last_login_us} />
                </Table.Td>
                <Table.Td>{p.agents}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Card>
    </Stack>
  );
}
