// Activity: what agents did (admins: everyone's), filtered, charted, one
// event in detail, and exported to a file.
import { useMemo, useState } from "react";
import { Alert, Badge, Button, Card, Group, Menu, Skeleton, Stack, Table, Text, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { IconDownload, IconFileCheck } from "@tabler/icons-react";
import { useInfiniteQuery } from "@tanstack/react-query";
import { keys, useAction, useAsk } from "../api";
import { NO_FILTERS, toLogFilter, type ActivityFilters } from "../activityFilter";
import { approverWords, decisionLook, outcomeWords } from "../activityWords";
import { ErrorAlert } from "../components/ErrorAlert";
import { TimeAgo } from "../components/TimeAgo";
import type { ActivityRow, ExportFormat } from "../types";
import { DayChart } from "./activity/DayChart";
import { EventDrawer } from "./activity/EventDrawer";
import { Filters } from "./activity/Filters";

const PAGE = 50;

export function Activity({ admin }: { admin: boolean }) {
  const call = useAsk();
  const [filters, setFilters] = useState<ActivityFilters>(NO_FILTERS);
  const [debounced] = useDebouncedValue(filters, 300);
  const filter = useMemo(() => toLogFilter(debounced, { admin }), [debounced, admin]);
  const [open, setOpen] = useState<ActivityRow | null>(null);

  const pages = useInfiniteQuery({
    queryKey: [...keys.activity, "log", filter],
    initialPageParam: null as number | null,
    queryFn: ({ pageParam }) => call({ call: "log", filter: { ...filter, before_id: pageParam }, limit: PAGE }, "log"),
    getNextPageParam: (last) => (last.length === PAGE ? last[last.length - 1]!.id : undefined),
  });
  const rows = pages.data?.pages.flat() ?? [];

  const exporter = useAction((format: ExportFormat) => call({ call: "activity_export", filter, format }, "exported"));

  return (
    <Stack gap="lg">
      <Group justify="space-between" align="flex-end">
        <Stack gap={2}>
          <Title order={2}>Activity</Title>
          <Text c="dimmed" size="sm">
            {admin ? "Everything agents did, and what people changed." : "What your agents did, and what you changed."}{" "}
            Select a row to see all of it.
          </Text>
        </Stack>
        <Menu position="bottom-end">
          <Menu.Target>
            <Button
              variant="light"
              leftSection={<IconDownload size={16} />}
              loading={exporter.isPending}
              data-testid="activity-export"
            >
              Export
            </Button>
          </Menu.Target>
          <Menu.Dropdown>
            <Menu.Label>Save what the filters show</Menu.Label>
            <Menu.Item onClick={() => exporter.mutate("csv")} data-testid="activity-export-csv">
              Spreadsheet (CSV)
            </Menu.Item>
            <Menu.Item onClick={() => exporter.mutate("jsonl")} data-testid="activity-export-jsonl">
              JSON Lines
            </Menu.Item>
          </Menu.Dropdown>
        </Menu>
      </Group>

      {exporter.isSuccess ? (
        <Alert
          color="teal"
          icon={<IconFileCheck />}
          title="Saved"
          withCloseButton
          onClose={() => exporter.reset()}
          data-testid="activity-export-result"
        >
          {exporter.data.rows} event{Number(exporter.data.rows) === 1 ? "" : "s"} saved to <b>{exporter.data.path}</b>
        </Alert>
      ) : null}
      <ErrorAlert error={exporter.error} />

      <Card>
        <Filters value={filters} onChange={setFilters} admin={admin} />
      </Card>

      <DayChart filter={filter} />

      <Card p={0}>
        {pages.isPending ? (
          <Stack p="md" gap="xs">
            <Skeleton h={28} />
            <Skeleton h={28} />
            <Skeleton h={28} />
          </Stack>
        ) : pages.isError ? (
          <Stack p="md">
            <ErrorAlert error={pages.error} onRetry={() => void pages.refetch()} />
          </Stack>
        ) : rows.length === 0 ? (
          <Text p="lg" c="dimmed" ta="center" data-testid="activity-empty">
            Nothing matches these filters.
          </Text>
        ) : (
          <Table.ScrollContainer minWidth={820}>
            <Table highlightOnHover verticalSpacing="xs" stickyHeader>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>When</Table.Th>
                  <Table.Th>Person</Table.Th>
                  <Table.Th>Agent</Table.Th>
                  <Table.Th>Server</Table.Th>
                  <Table.Th>Tool or event</Table.Th>
                  <Table.Th>Decision</Table.Th>
                  <Table.Th>Outcome</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {rows.map((r) => {
                  const d = decisionLook(r.decision);
                  return (
                    <Table.Tr
                      key={r.id}
                      data-testid="activity-row"
                      tabIndex={0}
                      style={{ cursor: "pointer" }}
                      onClick={() => setOpen(r)}
                      onKeyDown={(e) => {
                        if (e.key === "Enter" || e.key === " ") {
                          e.preventDefault();
                          setOpen(r);
                        }
                      }}
                      aria-label={`Event ${r.id}: show details`}
                    >
                      <Table.Td>
                        <TimeAgo us={r.time_us} />
                      </Table.Td>
                      <Table.Td>{r.on_behalf_of ?? "—"}</Table.Td>
                      <Table.Td>{r.agent ?? "—"}</Table.Td>
                      <Table.Td>{r.server ?? "—"}</Table.Td>
                      <Table.Td>
                        <Text size="sm" ff={r.tool ? "monospace" : undefined}>
                          {r.tool ?? r.kind}
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        {r.decision ? (
                          <Stack gap={2}>
                            <Badge color={d.color} variant="light">
                              {d.label}
                            </Badge>
                            {approverWords(r) ? (
                              <Text size="xs" c="dimmed" data-testid="activity-approver">
                                {approverWords(r)}
                              </Text>
                            ) : null}
                          </Stack>
                        ) : (
                          "—"
                        )}
                      </Table.Td>
                      <Table.Td>{outcomeWords(r.outcome)}</Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      {pages.hasNextPage ? (
        <Group justify="center">
          <Button
            variant="default"
            onClick={() => void pages.fetchNextPage()}
            loading={pages.isFetchingNextPage}
            data-testid="activity-more"
          >
            Show older events
          </Button>
        </Group>
      ) : null}
      <EventDrawer row={open} onClose={() => setOpen(null)} />
    </Stack>
  );
}
