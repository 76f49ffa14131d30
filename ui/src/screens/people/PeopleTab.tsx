import { useState } from "react";
import {
  Badge,
  Button,
  Card,
  Group,
  Menu,
  Modal,
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
import { CopyField } from "../../components/CopyField";
import { ErrorAlert } from "../../components/ErrorAlert";
import { TimeAgo } from "../../components/TimeAgo";
import { errorLine } from "../../errors";
import type { Invitation, User } from "../../types";

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
  const [resetCode, setResetCode] = useState<Invitation | null>(null);
  const reset = useAction(() => call({ call: "user_reset", name: user.name }, "invited"), {
    invalidate: [keys.users],
    onSuccess: setResetCode,
    onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
  });
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
        <Badge variant="dot" color={!active ? "red" : user.invited ? "yellow" : "teal"}>
          {!active ? "Disabled" : user.invited ? "Waiting to set up" : "Active"}
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
              <Menu.Item onClick={() => reset.mutate(undefined)}>Reset their sign-in (a new setup code)</Menu.Item>
              <Menu.Item color="red" onClick={() => setRemoving(true)}>
                Remove
              </Menu.Item>
            </Menu.Dropdown>
          </Menu>
        )}
        <Modal
          opened={resetCode !== null}
          onClose={() => setResetCode(null)}
          title={`Give ${user.name} their new setup code`}
          size="lg"
          centered
        >
          {resetCode ? <InvitationView invitation={resetCode} onDone={() => setResetCode(null)} /> : null}
        </Modal>
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
  const [admin, setAdmin] = useState(false);
  const [invited, setInvited] = useState<Invitation | null>(null);
  const add = useAction(() => call({ call: "user_add", name: name.trim(), admin, agent_roles: [] }, "invited"), {
    invalidate: [keys.users],
    onSuccess: setInvited,
  });
  const close = () => {
    setName("");
    setAdmin(false);
    setInvited(null);
    add.reset();
    onClose();
  };
  return (
    <Modal
      opened={opened}
      onClose={close}
      title={invited ? `Give ${invited.user.name} their setup code` : "Add a person"}
      size="lg"
      centered
    >
      {invited ? (
        <InvitationView invitation={invited} onDone={close} />
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            add.mutate(undefined);
          }}
        >
          <Stack>
            <Text size="sm">
              They choose their own password and set up their own authenticator app with a one-time code you give them.
              You never see either.
            </Text>
            <TextInput
              label="Name"
              description="What they type to sign in."
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              data-testid="person-name"
              data-autofocus
            />
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
              <Button type="submit" loading={add.isPending} disabled={!name.trim()} data-testid="person-submit">
                Add
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}

/** The one-time setup code an admin hands to a person they added or reset. */
function InvitationView({ invitation, onDone }: { invitation: Invitation; onDone: () => void }) {
  const hours = Math.max(0, Math.round((invitation.expires_s - Date.now() / 1000) / 3600));
  return (
    <Stack>
      <Text size="sm">
        Give this code to <b>{invitation.user.name}</b>, in person or over a channel you trust. It works once, for the
        next {hours} hours. On the sign-in screen they choose <b>Set up my account</b>, enter it, pick their own
        password and add Warden to their authenticator app.
      </Text>
      <CopyField value={invitation.code} label="the setup code" testId="invitation-code" />
      <Group justify="flex-end">
        <Button onClick={onDone} data-testid="invitation-done">
          Done
        </Button>
      </Group>
    </Stack>
  );
}
