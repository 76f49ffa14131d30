import { Button, Group, Select, SimpleGrid, TextInput } from "@mantine/core";
import { DatePickerInput } from "@mantine/dates";
import { IconCalendar, IconSearch } from "@tabler/icons-react";
import { keys, useCall } from "../../api";
import { DECISIONS, KINDS } from "../../activityWords";
import { activeCount, NO_FILTERS, type ActivityFilters } from "../../activityFilter";

export function Filters({
  value,
  onChange,
  admin,
}: {
  value: ActivityFilters;
  onChange: (f: ActivityFilters) => void;
  admin: boolean;
}) {
  const set = (patch: Partial<ActivityFilters>) => onChange({ ...value, ...patch });
  const users = useCall(keys.users, { call: "user_list" }, "users", { enabled: admin });
  const agents = useCall(keys.agents, { call: "agent_list" }, "agents");
  const servers = useCall(keys.servers, { call: "server_list" }, "servers");
  const count = activeCount(value);
  return (
    <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }} spacing="sm" data-testid="activity-filters">
      <TextInput
        label="Search"
        placeholder="Names, tools, arguments…"
        leftSection={<IconSearch size={16} />}
        value={value.search}
        onChange={(e) => set({ search: e.currentTarget.value })}
        data-testid="activity-search"
      />
      {admin ? (
        <Select
          label="Person"
          placeholder="Everyone"
          data={(users.data ?? []).map((u) => u.name)}
          value={value.person}
          onChange={(person) => set({ person })}
          clearable
          searchable
          data-testid="filter-person"
        />
      ) : null}
      <Select
        label="Agent"
        placeholder="Any agent"
        data={(agents.data ?? []).map((a) => a.name)}
        value={value.agent}
        onChange={(agent) => set({ agent })}
        clearable
        searchable
        data-testid="filter-agent"
      />
      <Select
        label="Server"
        placeholder="Any server"
        data={(servers.data ?? []).map((s) => s.name)}
        value={value.server}
        onChange={(server) => set({ server })}
        clearable
        searchable
        data-testid="filter-server"
      />
      <TextInput
        label="Tool"
        placeholder="Any tool"
        value={value.tool}
        onChange={(e) => set({ tool: e.currentTarget.value })}
        data-testid="filter-tool"
      />
      <Select
        label="Decision"
        placeholder="Any decision"
        data={DECISIONS.map((d) => ({ value: d.value, label: d.label }))}
        value={value.decision}
        onChange={(decision) => set({ decision })}
        clearable
        data-testid="filter-decision"
      />
      <Select
        label="Risk"
        placeholder="Any risk"
        data={[
          { value: "low", label: "Low" },
          { value: "high", label: "High" },
          { value: "critical", label: "Critical" },
        ]}
        value={value.risk}
        onChange={(risk) => set({ risk })}
        clearable
        data-testid="filter-risk"
      />
      <Select
        label="What happened"
        placeholder="Everything"
        data={KINDS}
        value={value.kind}
        onChange={(kind) => set({ kind })}
        clearable
        searchable
        data-testid="filter-kind"
      />
      <DatePickerInput
        type="range"
        label="Dates"
        placeholder="Any time"
        leftSection={<IconCalendar size={16} />}
        value={[value.from, value.to]}
        onChange={([from, to]) => set({ from, to })}
        clearable
        allowSingleDateInRange
        data-testid="filter-dates"
      />
      {count > 0 ? (
        <Group align="flex-end">
          <Button variant="subtle" onClick={() => onChange(NO_FILTERS)} data-testid="filter-clear">
            Clear {count} filter{count === 1 ? "" : "s"}
          </Button>
        </Group>
      ) : null}
    </SimpleGrid>
  );
}
