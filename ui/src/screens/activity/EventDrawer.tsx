import type { ReactNode } from "react";
import { Badge, Code, Drawer, Group, Stack, Table, Text } from "@mantine/core";
import { decisionLook, describeRow, kindLabel, outcomeWords } from "../../activityWords";
import { DelegationChain, parseChain } from "../../components/DelegationChain";
import { JsonBlock } from "../../components/JsonBlock";
import { RiskBadge } from "../../components/RiskBadge";
import { fromUs, localTime } from "../../time";
import type { ActivityRow } from "../../types";

/** Everything recorded about one event. */
export function EventDrawer({ row, onClose }: { row: ActivityRow | null; onClose: () => void }) {
  return (
    <Drawer opened={row !== null} onClose={onClose} position="right" size="lg" title={row ? describeRow(row) : ""}>
      {row ? <Details row={row} /> : null}
    </Drawer>
  );
}

function Details({ row }: { row: ActivityRow }) {
  const chain = parseChain(row.chain);
  const d = decisionLook(row.decision);
  const fields: [string, ReactNode][] = [
    ["When", localTime(fromUs(row.time_us))],
    ["What", kindLabel(row.kind)],
    ["For person", row.on_behalf_of ?? "—"],
    ["Agent", row.agent ?? "—"],
    ["Server", row.server ?? "—"],
    ["Tool", row.tool ?? "—"],
    ["Risk", row.risk ? <RiskBadge risk={row.risk} /> : "—"],
    [
      "Decision",
      row.decision ? (
        <Badge color={d.color} variant="light">
          {d.label}
        </Badge>
      ) : (
        "—"
      ),
    ],
    ["Approved or denied by", row.approver ?? "—"],
    ["Outcome", outcomeWords(row.outcome)],
    [
      "Took",
      row.latency_us !== null && row.latency_us !== undefined ? `${(row.latency_us / 1000).toFixed(1)} ms` : "—",
    ],
    ["Call", row.call_id ?? "—"],
    ["Event number", String(row.id)],
  ];
  return (
    <Stack data-testid="activity-details">
      {chain ? (
        <Stack gap={4}>
          <Text size="sm" fw={600}>
            Delegation chain
          </Text>
          <DelegationChain chain={chain} />
        </Stack>
      ) : null}
      <Table withRowBorders={false} verticalSpacing={4}>
        <Table.Tbody>
          {fields.map(([k, v]) => (
            <Table.Tr key={k}>
              <Table.Th w={180} fw={500} c="dimmed">
                {k}
              </Table.Th>
              <Table.Td>{v}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Stack gap={4}>
        <Text size="sm" fw={600}>
          Arguments (secrets hidden)
        </Text>
        <JsonBlock value={row.arguments} maxHeight={300} />
      </Stack>
      {row.detail ? (
        <Stack gap={4}>
          <Text size="sm" fw={600}>
            Details
          </Text>
          <JsonBlock value={row.detail} maxHeight={200} empty="None" />
        </Stack>
      ) : null}
      <Stack gap={4}>
        <Text size="sm" fw={600}>
          Tamper check
        </Text>
        <Text size="xs" c="dimmed">
          Each event is chained to the one before it, so changing the log afterwards shows.
        </Text>
        <Group gap="xs" wrap="nowrap">
          <Text size="xs" w={90}>
            This event
          </Text>
          <Code style={{ wordBreak: "break-all" }}>{row.hash}</Code>
        </Group>
        <Group gap="xs" wrap="nowrap">
          <Text size="xs" w={90}>
            Previous
          </Text>
          <Code style={{ wordBreak: "break-all" }}>{row.prev_hash}</Code>
        </Group>
        {row.arguments_hash ? (
          <Group gap="xs" wrap="nowrap">
            <Text size="xs" w={90}>
              Arguments
            </Text>
            <Code style={{ wordBreak: "break-all" }}>{row.arguments_hash}</Code>
          </Group>
        ) : null}
      </Stack>
    </Stack>
  );
}
