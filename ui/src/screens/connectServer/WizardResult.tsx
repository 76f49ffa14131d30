import { Alert, Button, Card, Group, List, Loader, Stack, Text, Title } from "@mantine/core";
import { IconCircleCheck } from "@tabler/icons-react";
import { useNavigate } from "react-router";
import { keys, useCall } from "../../api";
import { ErrorAlert } from "../../components/ErrorAlert";
import { RiskBadge } from "../../components/RiskBadge";
import { ServerProblem, probeWords, serverState } from "../../components/ServerStatus";
import { useTools } from "../../components/servers/ToolsTable";
import type { ToolJson } from "../../types";
import type { Progress } from "./ConnectProgress";

/** The last step: the tools the new server offers, once it is ready. */
export function WizardResult({ name, progress }: { name: string; progress: Extract<Progress, { phase: "done" }> }) {
  const navigate = useNavigate();
  const servers = useCall(keys.servers, { call: "server_list" }, "servers", {
    refetchInterval: (q) => {
      const s = q.state.data?.find((x) => x.name === name);
      return !s || serverState(s) === "starting" || serverState(s) === "stopped" ? 1000 : false;
    },
  });
  const server = servers.data?.find((x) => x.name === name);
  const state = server ? serverState(server) : "starting";
  const tools = useTools(name, state === "ready");
  const verdict = probeWords(progress.verdict);
  return (
    <Card data-testid="wizard-result">
      <Stack>
        <Group gap="xs">
          <IconCircleCheck color="var(--mantine-color-teal-6)" aria-hidden />
          <Title order={3} size="h4">
            {name} is connected
          </Title>
        </Group>
        {progress.signIn === "signed-in" ? (
          <Text size="sm">Warden signed in to it and keeps the sign-in in your system's keychain.</Text>
        ) : null}
        {progress.signIn === "not-needed" ? (
          <Text size="sm">This server does not ask for a sign-in, so Warden guards it for you.</Text>
        ) : null}
        {verdict ? (
          <Text size="sm" data-testid="wizard-probe">
            Sign-in check: {verdict}
          </Text>
        ) : null}
        {servers.isError ? <ErrorAlert error={servers.error} onRetry={() => void servers.refetch()} /> : null}
        {state === "starting" || state === "stopped" ? (
          <Group gap="xs">
            <Loader size="sm" />
            <Text size="sm">Starting the server and reading its tools…</Text>
          </Group>
        ) : server && state !== "ready" ? (
          <Alert color={state === "blocked" ? "orange" : "red"} variant="light">
            <ServerProblem server={server} />
          </Alert>
        ) : tools.isPending ? (
          <Group gap="xs">
            <Loader size="sm" />
            <Text size="sm">Reading its tools…</Text>
          </Group>
        ) : tools.isError ? (
          <ErrorAlert error={tools.error} onRetry={() => void tools.refetch()} />
        ) : (
          <Stack gap="xs">
            <Text size="sm" fw={500}>
              It offers {tools.data.length} tool{tools.data.length === 1 ? "" : "s"}:
            </Text>
            <List spacing={6} size="sm" listStyleType="none">
              {tools.data.map((t) => (
                <List.Item key={t.name}>
                  <Group gap="xs" wrap="nowrap">
                    <RiskBadge risk={t.warden?.risk ?? "high"} why={t.warden?.why} />
                    <Text size="sm" ff="monospace">
                      {t.name}
                    </Text>
                    {t.description ? (
                      <Text size="xs" c="dimmed" lineClamp={1}>
                        {t.description}
                      </Text>
                    ) : null}
                  </Group>
                </List.Item>
              ))}
            </List>
            <UntrustedHints trusted={server?.trusted ?? false} tools={tools.data} />
            <Text size="xs" c="dimmed">
              No agent may use them yet: give a role access on the server's page, or connect your AI app.
            </Text>
          </Stack>
        )}
        <Group justify="flex-end">
          <Button onClick={() => navigate(`/servers?server=${encodeURIComponent(name)}`)} data-testid="wizard-finish">
            Go to the server
          </Button>
        </Group>
      </Stack>
    </Card>
  );
}

/** Tools a server says only read, which Warden still rates risky because
 * nobody has trusted that server's word yet. */
export function readOnlyClaims(tools: ToolJson[]): number {
  return tools.filter((t) => t.annotations?.readOnlyHint === true && t.warden?.risk === "high").length;
}

/** Why read-only tools show as risky on a new server, and what changes it. */
function UntrustedHints({ trusted, tools }: { trusted: boolean; tools: ToolJson[] }) {
  const n = readOnlyClaims(tools);
  if (trusted || n === 0) return null;
  return (
    <Alert color="blue" variant="light" data-testid="wizard-untrusted-hint">
      {n === 1 ? "1 of these tools says it only reads" : `${n} of these tools say they only read`}, but a new server
      could say anything, so Warden rates them as risky. If you know where this server comes from, an admin can trust
      its own risk hints: on the server's page, open its ••• menu and choose "Trust this server's risk hints".
    </Alert>
  );
}
