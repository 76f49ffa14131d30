import { useState } from "react";
import {
  ActionIcon,
  Badge,
  Button,
  Card,
  Checkbox,
  Group,
  Modal,
  Select,
  Skeleton,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  Tooltip,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconPlus, IconTrash } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../../api";
import { ErrorAlert } from "../../components/ErrorAlert";
import { errorLine } from "../../errors";
import { EFFECTS, effectLook } from "../../grants";
import type { Role } from "../../types";

export function RolesTab() {
  const roles = useCall(keys.roles, { call: "role_list" }, "roles");
  const [adding, setAdding] = useState(false);
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          A role is a set of rules: which tools its agents may use, must ask for, or may not use. A "may not" always
          wins, and a tool no rule names is off limits.
        </Text>
        <Button leftSection={<IconPlus size={16} />} onClick={() => setAdding(true)} data-testid="role-add">
          Add a role
        </Button>
      </Group>
      {roles.isPending ? (
        <Skeleton h={120} />
      ) : roles.isError ? (
        <ErrorAlert error={roles.error} onRetry={() => void roles.refetch()} />
      ) : roles.data.length === 0 ? (
        <Card>
          <Text c="dimmed">No roles yet. Add one, then give agents the role.</Text>
        </Card>
      ) : (
        roles.data.map((r) => <RoleCard key={r.name} role={r} />)
      )}
      <AddRole opened={adding} onClose={() => setAdding(false)} />
    </Stack>
  );
}

function RoleCard({ role }: { role: Role }) {
  const call = useAsk();
  const servers = useCall(keys.servers, { call: "server_list" }, "servers");
  const [server, setServer] = useState<string | null>("*");
  const [pattern, setPattern] = useState("*");
  const [effect, setEffect] = useState<string | null>("ask");
  const [explicit, setExplicit] = useState(false);
  const [removing, setRemoving] = useState(false);
  const notifyError = (e: unknown) => notifications.show({ color: "red", message: errorLine(e) });
  const grant = useAction(
    () =>
      call(
        {
          call: "grant",
          role: role.name,
          server: server ?? "*",
          pattern: pattern.trim() || "*",
          effect: effect ?? "ask",
          explicit: effect === "allow" && explicit,
        },
        "done",
      ),
    { invalidate: [keys.roles], onSuccess: () => setPattern("*") },
  );
  const revoke = useAction(
    (g: { server: string; pattern: string }) =>
      call({ call: "revoke_grant", role: role.name, server: g.server, pattern: g.pattern }, "done"),
    {
      invalidate: [keys.roles],
      onError: notifyError,
    },
  );
  const remove = useAction(() => call({ call: "role_remove", name: role.name }, "done"), {
    invalidate: [keys.roles],
    onSuccess: () => setRemoving(false),
  });
  return (
    <Card data-testid={`role-${role.name}`}>
      <Group justify="space-between" mb="xs">
        <Stack gap={0}>
          <Title order={3} size="h5">
            {role.name}
          </Title>
          {role.description ? (
            <Text size="sm" c="dimmed">
              {role.description}
            </Text>
          ) : null}
        </Stack>
        <Tooltip label="Remove this role">
          <ActionIcon
            variant="subtle"
            color="red"
            onClick={() => setRemoving(true)}
            aria-label={`Remove the role ${role.name}`}
          >
            <IconTrash size={16} />
          </ActionIcon>
        </Tooltip>
      </Group>
      {role.grants.length ? (
        <Table mb="sm">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Server</Table.Th>
              <Table.Th>Tools</Table.Th>
              <Table.Th>Agents with this role</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {role.grants.map((g) => {
              const look = effectLook(g.effect);
              return (
                <Table.Tr key={`${g.server}/${g.pattern}`}>
                  <Table.Td>{g.server === "*" ? "Every server" : g.server}</Table.Td>
                  <Table.Td ff="monospace">{g.pattern === "*" ? "every tool" : g.pattern}</Table.Td>
                  <Table.Td>
                    <Badge color={look.color} variant="light">
                      {look.label}
                    </Badge>
                    {g.explicit ? (
                      <Badge ml={4} color="orange" variant="outline" size="sm">
                        even high-risk ones
                      </Badge>
                    ) : null}
                  </Table.Td>
                  <Table.Td>
                    <ActionIcon
                      variant="subtle"
                      color="red"
                      aria-label={`Remove the rule for ${g.pattern} on ${g.server}`}
                      onClick={() => revoke.mutate({ server: g.server, pattern: g.pattern })}
                    >
                      <IconTrash size={14} />
                    </ActionIcon>
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      ) : (
        <Text size="sm" c="dimmed" mb="sm">
          No rules yet: agents with only this role can use nothing.
        </Text>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          grant.mutate(undefined);
        }}
      >
        <Group align="flex-end" gap="xs">
          <Select
            label="Server"
            data={[
              { value: "*", label: "Every server" },
              ...(servers.data ?? []).map((s) => ({ value: s.name, label: s.name })),
            ]}
            value={server}
            onChange={setServer}
            allowDeselect={false}
            w={170}
          />
          <TextInput
            label="Tools"
            description="A tool name, or * and ? as wildcards"
            value={pattern}
            onChange={(e) => setPattern(e.currentTarget.value)}
            w={200}
          />
          <Select
            label="Agents with this role"
            data={EFFECTS.map((x) => ({ value: x.value, label: x.label }))}
            value={effect}
            onChange={setEffect}
            allowDeselect={false}
            w={170}
          />
          {effect === "allow" ? (
            <Checkbox
              label="Even high-risk tools, without asking"
              checked={explicit}
              onChange={(e) => setExplicit(e.currentTarget.checked)}
              mb={8}
            />
          ) : null}
          <Button type="submit" variant="light" loading={grant.isPending}>
            Add rule
          </Button>
        </Group>
        <ErrorAlert error={grant.error} />
      </form>
      <Modal opened={removing} onClose={() => setRemoving(false)} title={`Remove the role ${role.name}?`} centered>
        <Stack>
          <Text size="sm">Agents with this role lose what it allowed at their next call.</Text>
          <ErrorAlert error={remove.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setRemoving(false)}>
              Keep
            </Button>
            <Button color="red" onClick={() => remove.mutate(undefined)} loading={remove.isPending}>
              Remove
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Card>
  );
}

function AddRole({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const call = useAsk();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const add = useAction(() => call({ call: "role_add", name: name.trim(), description: description.trim() }, "done"), {
    invalidate: [keys.roles],
    onSuccess: () => {
      setName("");
      setDescription("");
      onClose();
    },
  });
  return (
    <Modal opened={opened} onClose={onClose} title="Add a role" centered>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          add.mutate(undefined);
        }}
      >
        <Stack>
          <TextInput
            label="Name"
            description="For example: readers or finance-bots."
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            data-testid="role-name"
            data-autofocus
          />
          <TextInput
            label="What it is for"
            value={description}
            onChange={(e) => setDescription(e.currentTarget.value)}
          />
          <ErrorAlert error={add.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={add.isPending} disabled={!name.trim()} data-testid="role-submit">
              Add
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
