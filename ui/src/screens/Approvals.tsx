// Approvals: what waits for an answer, what was decided, and the standing
// "always allow" approvals a person can take back.
import { Badge, Button, Card, Skeleton, Stack, Table, Text, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useQueryClient } from "@tanstack/react-query";
import { keys, useAction, useAsk, useCall } from "../api";
import { EMPTY_FILTER } from "../activityFilter";
import { ApprovalCard, type Choice } from "../components/ApprovalCard";
import { ErrorAlert } from "../components/ErrorAlert";
import { RiskBadge } from "../components/RiskBadge";
import { TimeAgo } from "../components/TimeAgo";
import { errorLine, isCode } from "../errors";

const OUTCOME: Record<string, { label: string; color: string }> = {
  approved: { label: "Allowed", color: "teal" },
  denied: { label: "Denied", color: "red" },
  timed_out: { label: "No answer: denied", color: "gray" },
  withdrawn: { label: "Withdrawn by the app", color: "gray" },
};

const SAID: Record<Choice, string> = {
  once: "Allowed once.",
  session: "Allowed for this session.",
  always: "Allowed from now on for these exact arguments.",
  deny: "Denied.",
};

export function Approvals() {
  return (
    <Stack gap="lg" maw={900}>
      <Stack gap={2}>
        <Title order={2}>Approvals</Title>
        <Text c="dimmed" size="sm">
          Risky calls wait here (and in a small window) until you answer. Unanswered requests are denied when their time
          runs out.
        </Text>
      </Stack>
      <PendingList />
      <Standing />
      <PastDecisions />
    </Stack>
  );
}

function PendingList() {
  const client = useQueryClient();
  const pending = useCall(keys.approvals, { call: "approvals" }, "approvals", { retry: false });
  const refresh = () => void client.invalidateQueries({ queryKey: keys.approvals });
  if (pending.isPending) return <Skeleton h={200} />;
  if (pending.isError) {
    return isCode(pending.error, "unavailable") ? (
      <Card>
        <Text size="sm">Approvals happen while Warden runs. Restart the Warden app, then come back here.</Text>
      </Card>
    ) : (
      <ErrorAlert error={pending.error} onRetry={() => void pending.refetch()} />
    );
  }
  const list = [...pending.data.requests].sort((a, b) => a.requested_at_us - b.requested_at_us);
  if (list.length === 0) {
    return (
      <Card data-testid="approvals-empty">
        <Text fw={600}>Nothing is waiting</Text>
        <Text size="sm" c="dimmed">
          When an agent asks to do something risky, it shows up here.
        </Text>
      </Card>
    );
  }
  return (
    <Stack>
      <Title order={3} size="h4">
        Waiting for you ({list.length})
      </Title>
      {list.map((r) => (
        <Card key={r.id} data-testid={`approval-${r.id}`}>
          <ApprovalCard
            request={r}
            onDecided={(choice) => {
              notifications.show({
                color: choice === "deny" ? "gray" : "teal",
                message: `${r.agent} → ${r.tool}: ${SAID[choice]}`,
              });
              refresh();
            }}
            onGone={() => {
              notifications.show({ color: "gray", message: "That request was answered elsewhere or timed out." });
              refresh();
            }}
          />
        </Card>
      ))}
    </Stack>
  );
}

function Standing() {
  const call = useAsk();
  const standing = useCall(["standing"], { call: "standing_list" }, "standing");
  const revoke = useAction((id: number) => call({ call: "standing_revoke", id }, "done"), {
    invalidate: [["standing"]],
    onSuccess: () =>
      notifications.show({ color: "gray", message: "That standing approval is gone: the next such call asks again." }),
    onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
  });
  if (standing.isError) return <ErrorAlert error={standing.error} onRetry={() => void standing.refetch()} />;
  if (!standing.data || standing.data.length === 0) return null;
  return (
    <Card>
      <Title order={3} size="h4" mb="xs">
        Always allowed
      </Title>
      <Text size="sm" c="dimmed" mb="sm">
        Calls with exactly these arguments run without asking. Take one back to be asked again.
      </Text>
      <Table.ScrollContainer minWidth={600}>
        <Table>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Agent</Table.Th>
              <Table.Th>Tool</Table.Th>
              <Table.Th>Arguments</Table.Th>
              <Table.Th>Since</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {standing.data.map((s) => (
              <Table.Tr key={s.id}>
                <Table.Td>{s.agent}</Table.Td>
                <Table.Td>
                  {s.tool}{" "}
                  <Text span size="xs" c="dimmed">
                    on {s.server}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <Text size="xs" ff="monospace" lineClamp={2}>
                    {s.arguments ?? "—"}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <TimeAgo us={s.created_at_us} />
                </Table.Td>
                <Table.Td>
                  <Button
                    size="xs"
                    variant="subtle"
                    color="red"
                    onClick={() => revoke.mutate(s.id)}
                    loading={revoke.isPending && revoke.variables === s.id}
                  >
                    Take back
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Card>
  );
}

function PastDecisions() {
  const log = useCall(
    [...keys.activity, "decisions"],
    { call: "log", filter: { ...EMPTY_FILTER, kind: "approval.decided" }, limit: 50 },
    "log",
  );
  return (
    <Card>
      <Title order={3} size="h4" mb="sm">
        Past decisions
      </Title>
      {log.isPending ? (
        <Skeleton h={80} />
      ) : log.isError ? (
        <ErrorAlert error={log.error} onRetry={() => void log.refetch()} />
      ) : log.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          No decisions yet.
        </Text>
      ) : (
        <Table.ScrollContainer minWidth={640}>
          <Table data-testid="past-decisions">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>When</Table.Th>
                <Table.Th>Agent</Table.Th>
                <Table.Th>Tool</Table.Th>
                <Table.Th>Risk</Table.Th>
                <Table.Th>Decision</Table.Th>
                <Table.Th>By</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {log.data.map((r) => {
                const o = OUTCOME[r.outcome ?? ""] ?? { label: r.outcome ?? r.decision ?? "—", color: "gray" };
                return (
                  <Table.Tr key={r.id}>
                    <Table.Td>
                      <TimeAgo us={r.time_us} />
                    </Table.Td>
                    <Table.Td>{r.agent}</Table.Td>
                    <Table.Td>
                      {r.tool}{" "}
                      <Text span size="xs" c="dimmed">
                        on {r.server}
                      </Text>
                    </Table.Td>
                    <Table.Td>{r.risk ? <RiskBadge risk={r.risk} /> : null}</Table.Td>
                    <Table.Td>
                      <Badge color={o.color} variant="light">
                        {o.label}
                      </Badge>
                    </Table.Td>
                    <Table.Td>{r.approver ?? "—"}</Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Card>
  );
}
