// Servers: every connected server, its tools and their risk.
import { useCallback } from "react";
import { Button, Card, Group, Skeleton, Stack, Text, Title } from "@mantine/core";
import { IconPlus } from "@tabler/icons-react";
import { Link, useSearchParams } from "react-router";
import { keys, useCall } from "../api";
import { ErrorAlert } from "../components/ErrorAlert";
import { QuarantinePanel } from "../components/servers/QuarantinePanel";
import { ServerCard } from "../components/servers/ServerCard";

export function Servers({ admin }: { admin: boolean }) {
  const [params, setParams] = useSearchParams();
  const focus = params.get("server");
  const signInNow = params.get("signin") === "1";
  // Started once; coming back to the page later does not start it again.
  const signInStarted = useCallback(
    () =>
      setParams(
        (p) => {
          p.delete("signin");
          return p;
        },
        { replace: true },
      ),
    [setParams],
  );
  const servers = useCall(keys.servers, { call: "server_list" }, "servers");
  const roles = useCall(keys.roles, { call: "role_list" }, "roles", { enabled: admin });
  return (
    <Stack gap="lg">
      <Group justify="space-between">
        <Stack gap={2}>
          <Title order={2}>Servers</Title>
          <Text c="dimmed" size="sm">
            The tools your agents can reach, how risky each one is, and{" "}
            {admin ? "which roles may use them" : "whether they work"}.
          </Text>
        </Stack>
        {admin ? (
          <Button component={Link} to="/connect-server" leftSection={<IconPlus size={16} />}>
            Connect a server
          </Button>
        ) : null}
      </Group>
      {admin ? <QuarantinePanel /> : null}
      {roles.isError ? <ErrorAlert error={roles.error} onRetry={() => void roles.refetch()} /> : null}
      {servers.isPending ? (
        <Stack>
          <Skeleton h={140} />
          <Skeleton h={140} />
        </Stack>
      ) : servers.isError ? (
        <ErrorAlert error={servers.error} onRetry={() => void servers.refetch()} />
      ) : servers.data.length === 0 ? (
        <Card>
          <Stack align="center" gap="xs" py="lg">
            <Text fw={600}>No servers yet</Text>
            <Text size="sm" c="dimmed" ta="center">
              {admin
                ? "Connect a server to give your agents tools, like a folder on this computer or a company service."
                : "An admin has not connected any servers yet."}
            </Text>
            {admin ? (
              <Button component={Link} to="/connect-server" variant="light">
                Connect a server
              </Button>
            ) : null}
          </Stack>
        </Card>
      ) : (
        servers.data.map((s) => (
          <ServerCard
            key={s.name}
            server={s}
            roles={roles.data}
            admin={admin}
            focused={focus === s.name}
            signInNow={signInNow && focus === s.name}
            onSignInStarted={signInStarted}
          />
        ))
      )}
    </Stack>
  );
}
