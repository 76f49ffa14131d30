import { BarChart } from "@mantine/charts";
import { Card, Skeleton, Text } from "@mantine/core";
import { useCall, keys } from "../../api";
import { dayLabel } from "../../time";
import type { DayCount, LogFilter } from "../../types";
import { ErrorAlert } from "../../components/ErrorAlert";

const SERIES = [
  { name: "Allowed", color: "teal.6", decision: "allow" },
  { name: "Asked", color: "orange.5", decision: "ask" },
  { name: "Denied", color: "red.6", decision: "deny" },
];

/** Day counts as chart rows: one per day, a column per decision. */
export function chartRows(days: DayCount[]) {
  const byDay = new Map<number, Record<string, number | string>>();
  for (const d of days) {
    const row = byDay.get(d.day) ?? { day: dayLabel(d.day), Allowed: 0, Asked: 0, Denied: 0 };
    const series = SERIES.find((s) => s.decision === d.decision)?.name ?? "Allowed";
    row[series] = Number(row[series] ?? 0) + Number(d.calls);
    byDay.set(d.day, row);
  }
  return [...byDay.entries()].sort((a, b) => a[0] - b[0]).map(([, row]) => row);
}

export function DayChart({ filter }: { filter: LogFilter }) {
  const stats = useCall([...keys.activity, "stats", filter], { call: "activity_stats", filter }, "day_counts");
  return (
    <Card>
      <Text fw={600} mb="sm">
        Calls per day
      </Text>
      {stats.isPending ? (
        <Skeleton h={180} />
      ) : stats.isError ? (
        <ErrorAlert error={stats.error} onRetry={() => void stats.refetch()} />
      ) : stats.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          No calls in this range.
        </Text>
      ) : (
        <BarChart
          h={180}
          data={chartRows(stats.data)}
          dataKey="day"
          type="stacked"
          series={SERIES.map(({ name, color }) => ({ name, color }))}
          withLegend
          aria-label="Calls per day by decision"
        />
      )}
    </Card>
  );
}
