import { useState } from "react";
import {
  Badge,
  Button,
  Card,
  Group,
  Menu,
  Modal,
  PasswordInput,
  Skeleton,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconDots, IconUserPlus } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../../api";
import { EnrollmentView } from "../../components/EnrollmentView";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PasswordStrength } from "../../components/PasswordStrength";
import { TimeAgo } from "../../components/TimeAgo";
import { errorLine } from "../../errors";
import type { Enrollment, User } from "../../types";

export function PeopleTab({ me }: { me: User }) {
  const users = useCall(keys.users, { call: "user_list" }, "users");
  const [adding, setAdding] = useState(false);
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          People sign in to Warden with a password and an authenticator app (or their company account, when single
          sign-on is set up).
        </Text>
        <Button leftSection={<IconUserPlus size={16} />} onClick={() => setAdding(true)} data-testid="person-add">
          Add a person
        </Button>
      </Group>
      <Card p={0}>
        {users.isPending ? (
          <Skeleton h={120} />
        ) : users.isError ? (
          <ErrorAlert error={users.error} onRetry={() => void users.refetch()} />
        ) : (
          <Table.ScrollContainer minWidth={600}>
            <Table verticalSpacing="sm">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Role</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Last sign-in</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {users.data.map((u) => (
                  <PersonRow key={u.id} user={u} me={me} />
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      <AddPerson opened={adding} onClose={() => setAdding(false)} />
    </Stack>
  );
}

function PersonRow({ user, me }: { user: User; me: User }) {
  const call = useAsk();
  const [removing, setRemoving] = useState(false);
  const active = user.status === "active";
  const toggle = useAction(
    () => call(active ? { call: "user_disable", name: user.name } : { call: "user_enable", name: user.name }, "done"),
    {
      invalidate: [keys.users, keys.agents],
      onSuccess: () =>
        notifications.show({
          color: active ? "orange" : "teal",
          message: active
            ? `${user.name} can no longer sign in, and their agents are paused.`
            : `${user.name} can sign in again.`,
        }),
      onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
    },
  );
  const remove = useAction(() => call({ call: "user_remove", name: user.name }, "done"), {
    invalidate: [keys.users, keys.agents],
    onSuccess: () => setRemoving(false),
  });
  const self = user.id === me.id;
  return (
    <Table.Tr data-testid={`person-${user.name}`}>
      <Table.Td>
        <Text fw={500}>
          {user.name}
          {self ? (
            <Text span c="dimmed" size="sm">
              {" "}
              (you)
            </Text>
          ) : null}
        </Text>
      </Table.Td>
      <Table.Td>
        <Badge variant="light" color={user.role === "admin" ? "blue" : "gray"}>
          {user.role}
        </Badge>
      </Table.Td>
      <Table.Td>
        <Badge variant="dot" color={active ? "teal" : "red"}>
          {active ? "Active" : "Disabled"}
        </Badge>
      </Table.Td>
      <Table.Td>
        <TimeAgo us={user.last_login_us} />
      </Table.Td>
      <Table.Td>
        {self ? null : (
          <Menu position="bottom-end">
            <Menu.Target>
              <Button
                variant="subtle"
                size="xs"
                rightSection={<IconDots size={14} />}
                aria-label={`Actions for ${user.name}`}
              >
                Change
              </Button>
            </Menu.Target>
            <Menu.Dropdown>
              <Menu.Item onClick={() => toggle.mutate(undefined)}>
                {active ? "Disable (stops their sign-in and agents)" : "Enable again"}
              </Menu.Item>
              <Menu.Item color="red" onClick={() => setRemoving(true)}>
                Remove
              </Menu.Item>
            </Menu.Dropdown>
          </Menu>
        )}
        <Modal opened={removing} onClose={() => setRemoving(false)} title={`Remove ${user.name}?`} centered>
          <Stack>
            <Text size="sm">
              They can no longer sign in, and their agents stop working. Their past activity stays in the log.
            </Text>
            <ErrorAlert error={remove.error} />
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setRemoving(false)}>
                Keep
              </Button>
              <Button color="red" onClick={() => remove.mutate(undefined)} loading={remove.isPending}>
                Remove {user.name}
              </Button>
            </Group>
          </Stack>
        </Modal>
      </Table.Td>
    </Table.Tr>
  );
}

function AddPerson({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const call = useAsk();
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [admin, setAdmin] = useState(false);
  const [enrolled, setEnrolled] = useState<Enrollment | null>(null);
  const [saved, setSaved] = useState(false);
  const add = useAction(
    () => call({ call: "user_add", name: name.trim(), admin, password, agent_roles: [] }, "enrolled"),
    {
      invalidate: [keys.users],
      onSuccess: (e) => {
        setEnrolled(e);
        setPassword("");
      },
    },
  );
  const close = () => {
    setName("");
    setPassword("");
    setAdmin(false);
    setEnrolled(null);
    setSaved(false);
    add.reset();
    onClose();
  };
  return (
    <Modal
      opened={opened}
      onClose={close}
      title={enrolled ? `Set up ${enrolled.user.name}'s sign-in` : "Add a person"}
      size="lg"
      centered
    >
      {enrolled ? (
        <Stack>
          <Text size="sm">
            Give this to <b>{enrolled.user.name}</b> now, in person if you can. It is shown only once: they scan the
            code with their authenticator app and keep the recovery codes.
          </Text>
          <EnrollmentView enrollment={enrolled} saved={saved} onSaved={setSaved} />
          <Group justify="flex-end">
            <Button onClick={close} disabled={!saved}>
              Done
            </Button>
          </Group>
        </Stack>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            add.mutate(undefined);
          }}
        >
          <Stack>
            <TextInput
              label="Name"
              description="What they type to sign in."
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              data-testid="person-name"
              data-autofocus
            />
            <PasswordInput
              label="First password"
              description="Tell it to them; they sign in with it."
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
              data-testid="person-password"
            />
            <PasswordStrength password={password} />
            <Switch
              label="Admin: may add servers, people and change access"
              checked={admin}
              onChange={(e) => setAdmin(e.currentTarget.checked)}
              data-testid="person-admin"
            />
            <ErrorAlert error={add.error} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button
                type="submit"
                loading={add.isPending}
                disabled={!name.trim() || !password}
                data-testid="person-submit"
              >
                Add
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
