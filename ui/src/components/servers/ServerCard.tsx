// One server: its state in plain words, what it offers, and (admins) its settings.
import { useEffect, useRef, useState } from "react";
import { ActionIcon, Badge, Button, Card, Code, Group, Menu, Modal, Stack, Text, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconDots, IconShieldCheck, IconShieldOff, IconTrash, IconWorldCheck } from "@tabler/icons-react";
import { keys, useAction, useAsk } from "../../api";
import { errorLine } from "../../errors";
import type { Role, ServerInfo } from "../../types";
import { ErrorAlert } from "../ErrorAlert";
import { ServerProblem, ServerStatusBadge, probeWords, serverState } from "../ServerStatus";
import { ConsentPanel } from "./ConsentPanel";
import { SignInPanel } from "./SignInPanel";
import { ToolsTable } from "./ToolsTable";

export function ServerCard({
  server,
  roles,
  admin,
  focused,
  signInNow = false,
  onSignInStarted = () => {},
}: {
  server: ServerInfo;
  roles: Role[] | undefined;
  admin: boolean;
  focused: boolean;
  /** Start signing in to it again at once (from a notification). */
  signInNow?: boolean;
  onSignInStarted?: () => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (focused) ref.current?.scrollIntoView?.({ behavior: "smooth", block: "start" });
  }, [focused]);
  const state = serverState(server);
  const probe = probeWords(server.probe);
  const remote = server.transport !== "stdio";
  return (
    <Card
      ref={ref}
      data-testid={`server-${server.name}`}
      withBorder
      shadow={focused ? "md" : undefined}
      style={focused ? { borderColor: "var(--mantine-color-blue-5)" } : undefined}
    >
      <Stack gap="sm">
        <Group justify="space-between" wrap="nowrap" align="flex-start">
          <Stack gap={2}>
            <Group gap="xs">
              <Title order={3} size="h4">
                {server.name}
              </Title>
              <ServerStatusBadge server={server} />
              {state === "ready" ? (
                <Text size="xs" c="dimmed">
                  {server.tools} tool{server.tools === 1 ? "" : "s"}
                </Text>
              ) : null}
            </Group>
            <Text size="xs" c="dimmed">
              {remote ? "Remote server at " : "Runs on this computer: "}
              <Code>{server.target}</Code>
            </Text>
          </Stack>
          {admin ? <ServerMenu server={server} /> : null}
        </Group>
        <ServerProblem server={server} />
        {state === "blocked" ? <ConsentPanel name={server.name} admin={admin} remote={remote} /> : null}
        {remote && admin ? <SignInPanel server={server} autoStart={signInNow} onAutoStarted={onSignInStarted} /> : null}
        {probe ? (
          <Group gap="xs">
            <IconWorldCheck size={16} aria-hidden />
            <Text size="sm" data-testid="server-probe">
              Sign-in check: {probe}
            </Text>
          </Group>
        ) : null}
        {server.restarts > 0 ? (
          <Text size="xs" c="dimmed">
            Restarted {server.restarts} time{server.restarts === 1 ? "" : "s"} after stopping unexpectedly.
          </Text>
        ) : null}
        <ToolsTable server={server} roles={roles} admin={admin} />
      </Stack>
    </Card>
  );
}

function ServerMenu({ server }: { server: ServerInfo }) {
  const call = useAsk();
  const [confirmRemove, setConfirmRemove] = useState(false);
  const trusted = server.trusted;
  const notifyError = (e: unknown) => notifications.show({ color: "red", message: errorLine(e) });
  const trust = useAction(
    (t: boolean) => call({ call: "server_trust", name: server.name, trusted: t, auto_trust_new_tools: false }, "done"),
    {
      invalidate: [keys.servers, keys.tools(server.name)],
      onSuccess: (_, t) =>
        notifications.show({
          color: "teal",
          message: t
            ? `${server.name} is trusted: its own risk hints count.`
            : `${server.name} is no longer trusted: its tools count as risky unless you say otherwise.`,
        }),
      onError: notifyError,
    },
  );
  const probe = useAction(() => call({ call: "server_probe", name: server.name }, "probe"), {
    invalidate: [keys.servers],
    onSuccess: (r) =>
      notifications.show({ color: "blue", message: `Sign-in check for ${server.name}: ${probeWords(r.verdict)}` }),
    onError: notifyError,
  });
  const remove = useAction(() => call({ call: "server_remove", name: server.name }, "done"), {
    invalidate: [keys.servers],
    onSuccess: () => {
      setConfirmRemove(false);
      notifications.show({ color: "gray", message: `${server.name} was removed.` });
    },
  });
  return (
    // Kept whole beside a long command line: the badge never gets squeezed.
    <Group gap="xs" wrap="nowrap" style={{ flexShrink: 0 }}>
      {trusted !== undefined ? (
        <Badge variant="outline" color={trusted ? "teal" : "gray"} size="sm">
          {trusted ? "Trusted" : "Not trusted"}
        </Badge>
      ) : null}
      <Menu position="bottom-end" withinPortal>
        <Menu.Target>
          <Tooltip label="Server settings">
            <ActionIcon variant="subtle" aria-label={`Settings for ${server.name}`} data-testid="server-menu">
              <IconDots size={18} />
            </ActionIcon>
          </Tooltip>
        </Menu.Target>
        <Menu.Dropdown>
          {trusted !== true ? (
            <Menu.Item
              leftSection={<IconShieldCheck size={16} />}
              onClick={() => trust.mutate(true)}
              data-testid="server-trust"
            >
              Trust this server's risk hints
            </Menu.Item>
          ) : null}
          {trusted !== false ? (
            <Menu.Item
              leftSection={<IconShieldOff size={16} />}
              onClick={() => trust.mutate(false)}
              data-testid="server-untrust"
            >
              Stop trusting its risk hints
            </Menu.Item>
          ) : null}
          {server.transport !== "stdio" ? (
            <Menu.Item leftSection={<IconWorldCheck size={16} />} onClick={() => probe.mutate(undefined)}>
              Check that it refuses strangers
            </Menu.Item>
          ) : null}
          <Menu.Divider />
          <Menu.Item
            color="red"
            leftSection={<IconTrash size={16} />}
            onClick={() => setConfirmRemove(true)}
            data-testid="server-remove"
          >
            Remove server
          </Menu.Item>
        </Menu.Dropdown>
      </Menu>
      <Modal opened={confirmRemove} onClose={() => setConfirmRemove(false)} title={`Remove ${server.name}?`} centered>
        <Stack>
          <Text size="sm">
            Agents will no longer reach its tools. Its past activity stays in the log. You can add it again later.
          </Text>
          <ErrorAlert error={remove.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirmRemove(false)}>
              Keep it
            </Button>
            <Button
              color="red"
              onClick={() => remove.mutate(undefined)}
              loading={remove.isPending}
              data-testid="server-remove-confirm"
            >
              Remove
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Group>
  );
}
