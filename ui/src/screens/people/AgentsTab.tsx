import { useState } from "react";
import {
  Badge,
  Button,
  Card,
  Group,
  Menu,
  Modal,
  MultiSelect,
  NumberInput,
  Select,
  Skeleton,
  Stack,
  Table,
  Text,
  TextInput,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconDots, IconPlus } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../../api";
import { ErrorAlert } from "../../components/ErrorAlert";
import { TimeAgo } from "../../components/TimeAgo";
import { errorLine } from "../../errors";
import type { Agent, AgentCreated, User } from "../../types";
import { CredentialShown } from "./CredentialShown";

const STATUS: Record<string, { label: string; color: string }> = {
  active: { label: "Active", color: "teal" },
  revoked: { label: "Revoked", color: "red" },
  suspended: { label: "Paused (owner disabled)", color: "orange" },
};

export function AgentsTab() {
  const agents = useCall(keys.agents, { call: "agent_list" }, "agents");
  const users = useCall(keys.users, { call: "user_list" }, "users");
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<AgentCreated | null>(null);
  const owner = (id: number | null) => users.data?.find((u) => u.id === id)?.name ?? "—";
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          Each AI app or script gets its own agent, acting for one person, with its own credential.
        </Text>
        <Button leftSection={<IconPlus size={16} />} onClick={() => setCreating(true)} data-testid="agent-add">
          Create an agent
        </Button>
      </Group>
      <Card p={0}>
        {agents.isPending ? (
          <Skeleton h={120} />
        ) : agents.isError ? (
          <ErrorAlert error={agents.error} onRetry={() => void agents.refetch()} />
        ) : agents.data.length === 0 ? (
          <Text p="lg" c="dimmed" ta="center">
            No agents yet. Connecting an AI app creates one.
          </Text>
        ) : (
          <Table.ScrollContainer minWidth={700}>
            <Table verticalSpacing="sm">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Agent</Table.Th>
                  <Table.Th>Acts for</Table.Th>
                  <Table.Th>Roles</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Last used</Table.Th>
                  <Table.Th>Credential expires</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {agents.data.map((a) => (
                  <AgentRow key={a.id} agent={a} owner={a.owner ?? owner(a.owner_id)} onCredential={setShown} />
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      <CreateAgent opened={creating} onClose={() => setCreating(false)} users={users.data ?? []} onCreated={setShown} />
      <Modal opened={shown !== null} onClose={() => setShown(null)} title="Copy the credential now" size="lg" centered>
        {shown ? <CredentialShown created={shown} /> : null}
        <Group justify="flex-end" mt="md">
          <Button onClick={() => setShown(null)}>I copied it</Button>
        </Group>
      </Modal>
    </Stack>
  );
}

function AgentRow({
  agent,
  owner,
  onCredential,
}: {
  agent: Agent;
  owner: string;
  onCredential: (c: AgentCreated) => void;
}) {
  const call = useAsk();
  const [revoking, setRevoking] = useState(false);
  const notifyError = (e: unknown) => notifications.show({ color: "red", message: errorLine(e) });
  const rotate = useAction(
    () => call({ call: "agent_rotate", name: agent.name, expires_days: null }, "agent_created"),
    {
      invalidate: [keys.agents],
      onSuccess: onCredential,
      onError: notifyError,
    },
  );
  const revoke = useAction(() => call({ call: "agent_revoke", name: agent.name }, "done"), {
    invalidate: [keys.agents],
    onSuccess: () => {
      setRevoking(false);
      notifications.show({ color: "gray", message: `${agent.name} is revoked: its next call is refused.` });
    },
  });
  const s = STATUS[agent.status] ?? { label: agent.status, color: "gray" };
  const active = agent.status === "active";
  return (
    <Table.Tr data-testid={`agent-${agent.name}`}>
      <Table.Td fw={500}>{agent.name}</Table.Td>
      <Table.Td>{owner}</Table.Td>
      <Table.Td>{agent.roles.length > 0 ? agent.roles.join(", ") : "none"}</Table.Td>
      <Table.Td>
        <Badge variant="dot" color={s.color}>
          {s.label}
        </Badge>
      </Table.Td>
      <Table.Td>
        <TimeAgo us={agent.last_used_at_us} />
      </Table.Td>
      <Table.Td>
        {agent.expires_at_us ? (
          <TimeAgo us={agent.expires_at_us} />
        ) : (
          <Text size="sm" c="dimmed">
            never
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        {active ? (
          <Menu position="bottom-end">
            <Menu.Target>
              <Button
                variant="subtle"
                size="xs"
                rightSection={<IconDots size={14} />}
                aria-label={`Actions for ${agent.name}`}
                loading={rotate.isPending}
              >
                Change
              </Button>
            </Menu.Target>
            <Menu.Dropdown>
              <Menu.Item onClick={() => rotate.mutate(undefined)}>
                New credential (the old one works one more hour)
              </Menu.Item>
              <Menu.Item color="red" onClick={() => setRevoking(true)}>
                Revoke
              </Menu.Item>
            </Menu.Dropdown>
          </Menu>
        ) : null}
        <Modal opened={revoking} onClose={() => setRevoking(false)} title={`Revoke ${agent.name}?`} centered>
          <Stack>
            <Text size="sm">
              Its credential stops working at once, even in conversations already open. This cannot be undone; create a
              new agent if you need one again.
            </Text>
            <ErrorAlert error={revoke.error} />
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setRevoking(false)}>
                Keep
              </Button>
              <Button color="red" onClick={() => revoke.mutate(undefined)} loading={revoke.isPending}>
                Revoke
              </Button>
            </Group>
          </Stack>
        </Modal>
      </Table.Td>
    </Table.Tr>
  );
}

function CreateAgent({
  opened,
  onClose,
  users,
  onCreated,
}: {
  opened: boolean;
  onClose: () => void;
  users: User[];
  onCreated: (c: AgentCreated) => void;
}) {
  const call = useAsk();
  const roles = useCall(keys.roles, { call: "role_list" }, "roles", { enabled: opened });
  const [name, setName] = useState("");
  const [picked, setPicked] = useState<string[]>([]);
  const [days, setDays] = useState<number | string>(30);
  const [owner, setOwner] = useState<string | null>(null);
  const create = useAction(
    () =>
      call(
        {
          call: "agent_add",
          name: name.trim(),
          roles: picked,
          expires_days: typeof days === "number" ? days : null,
          owner,
        },
        "agent_created",
      ),
    {
      invalidate: [keys.agents],
      onSuccess: (c) => {
        onCreated(c);
        setName("");
        setPicked([]);
        onClose();
      },
    },
  );
  return (
    <Modal opened={opened} onClose={onClose} title="Create an agent" centered>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate(undefined);
        }}
      >
        <Stack>
          <TextInput
            label="Name"
            description="For example: reports-script. Letters, digits and hyphens."
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            data-testid="agent-name"
            data-autofocus
          />
          <Select
            label="Acts for"
            placeholder="You"
            data={users.map((u) => u.name)}
            value={owner}
            onChange={setOwner}
            clearable
            description="The person asked to approve its risky calls."
          />
          <MultiSelect
            label="Roles"
            placeholder="Choose what it may use"
            data={(roles.data ?? []).map((r) => ({
              value: r.name,
              label: r.description ? `${r.name}: ${r.description}` : r.name,
            }))}
            value={picked}
            onChange={setPicked}
            searchable
          />
          <NumberInput label="Credential lasts (days)" min={1} max={365} value={days} onChange={setDays} />
          <ErrorAlert error={create.error ?? roles.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending} disabled={!name.trim()} data-testid="agent-submit">
              Create
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
