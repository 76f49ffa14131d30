// Home: is Warden working, what needs attention, what happened lately.
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Card,
  Group,
  SimpleGrid,
  Skeleton,
  Stack,
  Table,
  Text,
  Title,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconAlertTriangle, IconChecklist, IconPlayerPause, IconServer, IconShieldCheck } from "@tabler/icons-react";
import { Link } from "react-router";
import { keys, useAction, useAsk, useCall } from "../api";
import { decisionLook, describeRow } from "../activityWords";
import { CopyField } from "../components/CopyField";
import { ErrorAlert } from "../components/ErrorAlert";
import { HeldSettings } from "../components/HeldSettings";
import { ServerStatusBadge, serverState } from "../components/ServerStatus";
import { TimeAgo } from "../components/TimeAgo";
import { errorLine, isCode } from "../errors";
import { EMPTY_FILTER } from "../activityFilter";
import type { AppStatus, User } from "../types";

export function Home({ status, user }: { status: AppStatus; user: User }) {
  return (
    <Stack gap="lg">
      <Title order={2}>Hello, {user.name}</Title>
      {status.paused ? <PausedBanner admin={user.role === "admin"} /> : null}
      {status.held_settings.length > 0 ? <HeldSettings held={status.held_settings} /> : null}
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <GatewayCard status={status} />
        <ServersCard />
        <ApprovalsCard />
      </SimpleGrid>
      <RecentActivity />
    </Stack>
  );
}

function PausedBanner({ admin }: { admin: boolean }) {
  const call = useAsk();
  const resume = useAction(() => call({ call: "agents_pause", paused: false }, "done"), {
    invalidate: [keys.status],
    onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
  });
  return (
    <Alert color="orange" icon={<IconPlayerPause />} title="All agents are paused" data-testid="paused-banner">
      <Group justify="space-between">
        <Text size="sm">
          Warden refuses every agent's calls until {admin ? "you resume them" : "an admin resumes them"}.
        </Text>
        {admin ? (
          <Button color="orange" size="xs" onClick={() => resume.mutate(undefined)} loading={resume.isPending}>
            Resume agents
          </Button>
        ) : null}
      </Group>
    </Alert>
  );
}

function GatewayCard({ status }: { status: AppStatus }) {
  return (
    <Card>
      <Group gap="xs" mb="xs">
        <IconShieldCheck size={20} aria-hidden />
        <Text fw={600}>Warden</Text>
      </Group>
      {status.endpoint ? (
        <Stack gap="xs">
          <Badge color="teal" variant="light">
            Running
          </Badge>
          <Text size="sm" c="dimmed">
            AI apps reach Warden at this address:
          </Text>
          <CopyField value={status.endpoint} label="the address" />
        </Stack>
      ) : (
        <Stack gap="xs">
          <Badge color="red" variant="light">
            Not running
          </Badge>
          <Text size="sm">Agents cannot reach Warden right now. Restart the Warden app to start it again.</Text>
        </Stack>
      )}
      <Text size="xs" c="dimmed" mt="sm">
        Version {status.version}
      </Text>
    </Card>
  );
}

function ServersCard() {
  const servers = useCall(keys.servers, { call: "server_list" }, "servers");
  const list = servers.data ?? [];
  const trouble = list.filter((s) => ["failed", "blocked"].includes(serverState(s)));
  return (
    <Card>
      <Group gap="xs" mb="xs">
        <IconServer size={20} aria-hidden />
        <Text fw={600}>Servers</Text>
      </Group>
      {servers.isPending ? (
        <Skeleton h={60} />
      ) : servers.isError ? (
        <ErrorAlert error={servers.error} onRetry={() => void servers.refetch()} />
      ) : list.length === 0 ? (
        <Stack gap="xs">
          <Text size="sm">No servers yet. Connect one so your agents have tools to use.</Text>
          <Button component={Link} to="/connect-server" size="xs" variant="light">
            Connect a server
          </Button>
        </Stack>
      ) : (
        <Stack gap={6}>
          <Text size="sm">
            {list.length - trouble.length} of {list.length} working
          </Text>
          {list.slice(0, 5).map((s) => (
            <Group key={s.name} justify="space-between" wrap="nowrap">
              <Anchor component={Link} to={`/servers?server=${encodeURIComponent(s.name)}`} size="sm">
                {s.name}
              </Anchor>
              <ServerStatusBadge server={s} />
            </Group>
          ))}
          {trouble.length ? (
            <Group gap={4}>
              <IconAlertTriangle size={14} color="var(--mantine-color-red-6)" aria-hidden />
              <Text size="xs" c="red.8">
                {trouble.length} need{trouble.length === 1 ? "s" : ""} attention
              </Text>
            </Group>
          ) : null}
        </Stack>
      )}
    </Card>
  );
}

function ApprovalsCard() {
  const pending = useCall(keys.approvals, { call: "approvals" }, "approvals", { retry: false });
  const list = pending.data?.requests ?? [];
  return (
    <Card>
      <Group gap="xs" mb="xs">
        <IconChecklist size={20} aria-hidden />
        <Text fw={600}>Waiting for you</Text>
      </Group>
      {pending.isPending ? (
        <Skeleton h={60} />
      ) : pending.isError ? (
        isCode(pending.error, "unavailable") ? (
          <Text size="sm" c="dimmed">
            Approvals show here while Warden runs.
          </Text>
        ) : (
          <ErrorAlert error={pending.error} onRetry={() => void pending.refetch()} />
        )
      ) : list.length === 0 ? (
        <Text size="sm" c="dimmed" data-testid="home-approvals-none">
          Nothing is waiting. When an agent asks to do something risky, you will see it here and in a small window.
        </Text>
      ) : (
        <Stack gap={6}>
          <Text size="sm" fw={600} c="orange.8" data-testid="home-approvals-count">
            {list.length} request{list.length === 1 ? "" : "s"} waiting
          </Text>
          {list.slice(0, 3).map((r) => (
            <Text key={r.id} size="sm">
              {r.agent} wants to use {r.tool}
            </Text>
          ))}
          <Button component={Link} to="/approvals" size="xs" color="orange" variant="light">
            Answer them
          </Button>
        </Stack>
      )}
    </Card>
  );
}

function RecentActivity() {
  const log = useCall([...keys.activity, "recent"], { call: "log", filter: EMPTY_FILTER, limit: 10 }, "log");
  return (
    <Card>
      <Group justify="space-between" mb="sm">
        <Text fw={600}>Recent activity</Text>
        <Anchor component={Link} to="/activity" size="sm">
          See all activity
        </Anchor>
      </Group>
      {log.isPending ? (
        <Stack gap="xs">
          <Skeleton h={24} />
          <Skeleton h={24} />
          <Skeleton h={24} />
        </Stack>
      ) : log.isError ? (
        <ErrorAlert error={log.error} onRetry={() => void log.refetch()} />
      ) : log.data.length === 0 ? (
        <Text size="sm" c="dimmed">
          Nothing has happened yet. Once an AI app uses Warden, its calls show here.
        </Text>
      ) : (
        <Table.ScrollContainer minWidth={500}>
          <Table verticalSpacing={6}>
            <Table.Tbody>
              {log.data.map((r) => {
                const d = decisionLook(r.decision);
                return (
                  <Table.Tr key={r.id}>
                    <Table.Td w={140}>
                      <TimeAgo us={r.time_us} c="dimmed" />
                    </Table.Td>
                    <Table.Td>
                      <Text size="sm">{describeRow(r)}</Text>
                    </Table.Td>
                    <Table.Td w={140}>
                      {r.decision ? (
                        <Badge variant="light" color={d.color}>
                          {d.label}
                        </Badge>
                      ) : null}
                    </Table.Td>
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
