// Connect your AI app: an agent of its own, the servers it may use, and
// the app's MCP settings written for it (or a snippet to paste).
import { useState, type ReactNode } from "react";
import {
  Alert,
  Button,
  Card,
  Checkbox,
  Code,
  CopyButton,
  Group,
  Loader,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { IconBrandVscode, IconCheck, IconCopy, IconCursorText, IconMessageChatbot } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../api";
import { ChoiceCard } from "../components/ChoiceCard";
import { ErrorAlert } from "../components/ErrorAlert";
import { serverState } from "../components/ServerStatus";
import type { ClientApp } from "../types";

export const APPS: { id: ClientApp; title: string; text: string; agent: string; icon: ReactNode }[] = [
  {
    id: "claude_desktop",
    title: "Claude Desktop",
    text: "Anthropic's desktop app.",
    agent: "claude-desktop",
    icon: <IconMessageChatbot size={20} />,
  },
  { id: "cursor", title: "Cursor", text: "The AI code editor.", agent: "cursor", icon: <IconCursorText size={20} /> },
  {
    id: "vscode",
    title: "VS Code",
    text: "Visual Studio Code with an AI assistant.",
    agent: "vscode",
    icon: <IconBrandVscode size={20} />,
  },
];

export function ConnectApp() {
  const call = useAsk();
  const servers = useCall(keys.servers, { call: "server_list" }, "servers");
  const [app, setApp] = useState<ClientApp | null>(null);
  const [agent, setAgent] = useState("");
  const [edited, setEdited] = useState(false);
  const [picked, setPicked] = useState<string[]>([]);
  const connect = useAction(
    (write: boolean) =>
      call({ call: "client_connect", app: app!, agent: agent.trim(), servers: picked, write }, "client_connected"),
    { invalidate: [keys.agents, keys.roles] },
  );
  const chosen = APPS.find((a) => a.id === app);
  const problem = !app
    ? "Choose your AI app."
    : !agent.trim()
      ? "Give its agent a name."
      : picked.length === 0
        ? "Choose at least one server it may use."
        : null;

  const choose = (id: ClientApp) => {
    setApp(id);
    if (!edited) setAgent(APPS.find((a) => a.id === id)!.agent);
    connect.reset();
  };

  return (
    <Stack gap="lg" maw={860}>
      <Stack gap={2}>
        <Title order={2}>Connect your AI app</Title>
        <Text c="dimmed" size="sm">
          Your AI app gets its own agent in Warden. It reaches only the servers you tick here, and risky tools still ask
          you first.
        </Text>
      </Stack>

      <Stack gap="xs">
        <Text fw={600}>1. Which app?</Text>
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          {APPS.map((a) => (
            <ChoiceCard
              key={a.id}
              selected={app === a.id}
              onClick={() => choose(a.id)}
              icon={a.icon}
              title={a.title}
              text={a.text}
              testId={`app-${a.id}`}
            />
          ))}
        </SimpleGrid>
      </Stack>

      <TextInput
        label="2. Name of its agent"
        description="How it shows up in Activity and in approval requests."
        value={agent}
        onChange={(e) => {
          setAgent(e.currentTarget.value);
          setEdited(true);
        }}
        data-testid="app-agent-name"
      />

      <Stack gap="xs">
        <Text fw={600}>3. Which servers may it use?</Text>
        {servers.isPending ? (
          <Loader size="sm" />
        ) : servers.isError ? (
          <ErrorAlert error={servers.error} onRetry={() => void servers.refetch()} />
        ) : servers.data.length === 0 ? (
          <Text size="sm" c="dimmed">
            No servers yet. Connect a server first, then come back.
          </Text>
        ) : (
          <Checkbox.Group value={picked} onChange={setPicked} aria-label="Servers it may use">
            <Stack gap="xs">
              {servers.data.map((s) => (
                <Checkbox
                  key={s.name}
                  value={s.name}
                  label={s.name}
                  description={
                    serverState(s) === "ready" ? `${s.tools} tool${s.tools === 1 ? "" : "s"}` : "not working right now"
                  }
                  data-testid={`app-server-${s.name}`}
                />
              ))}
            </Stack>
          </Checkbox.Group>
        )}
      </Stack>

      <Stack gap="xs">
        <Group>
          <Button
            onClick={() => connect.mutate(true)}
            disabled={problem !== null}
            loading={connect.isPending && connect.variables === true}
            data-testid="app-write"
          >
            Write the configuration
          </Button>
          <Button
            variant="default"
            onClick={() => connect.mutate(false)}
            disabled={problem !== null}
            loading={connect.isPending && connect.variables === false}
            data-testid="app-snippet-only"
          >
            Show the snippet
          </Button>
        </Group>
        {problem && !connect.isSuccess ? (
          <Text size="sm" c="dimmed">
            {problem}
          </Text>
        ) : null}
      </Stack>

      <ErrorAlert error={connect.error} />

      {connect.isSuccess ? (
        <Card data-testid="app-result">
          <Stack>
            {connect.data.written ? (
              <Alert color="teal" title={`${chosen?.title ?? "Your app"} is set up`}>
                <Stack gap={4}>
                  <Text size="sm">
                    Warden wrote its settings to <Code>{connect.data.config_path}</Code>.
                  </Text>
                  {connect.data.backup_path ? (
                    <Text size="sm">
                      The file as it was before is kept at <Code>{connect.data.backup_path}</Code>.
                    </Text>
                  ) : null}
                  <Text size="sm">Quit and reopen {chosen?.title ?? "the app"} so it picks up the change.</Text>
                </Stack>
              </Alert>
            ) : (
              <Alert color="blue" title="Paste this into your app's settings">
                <Text size="sm">
                  {connect.data.config_path ? (
                    <>
                      Add it to <Code>{connect.data.config_path}</Code>, then quit and reopen{" "}
                      {chosen?.title ?? "the app"}.
                    </>
                  ) : (
                    <>Add it to the app's MCP server settings, then restart it.</>
                  )}
                </Text>
              </Alert>
            )}
            <Text size="sm">
              The agent <b>{connect.data.agent.name}</b> was created for it.
            </Text>
            <Stack gap={4}>
              <Text size="sm" fw={500}>
                The part that points {chosen?.title ?? "the app"} at Warden
              </Text>
              <Code block component="pre" data-testid="app-snippet">
                {connect.data.snippet}
              </Code>
              <Group>
                <CopyButton value={connect.data.snippet}>
                  {({ copied, copy }) => (
                    <Button
                      size="xs"
                      variant="light"
                      leftSection={copied ? <IconCheck size={14} /> : <IconCopy size={14} />}
                      onClick={copy}
                    >
                      {copied ? "Copied" : "Copy the snippet"}
                    </Button>
                  )}
                </CopyButton>
              </Group>
            </Stack>
          </Stack>
        </Card>
      ) : null}
    </Stack>
  );
}
