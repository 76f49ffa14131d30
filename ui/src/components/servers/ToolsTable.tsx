// A server's tools: what each does, its risk and why, and (admins) who may use it.
import { Badge, Group, Skeleton, Spoiler, Stack, Table, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { keys, useAsk } from "../../api";
import type { Role, ServerInfo, ToolJson } from "../../types";
import { ErrorAlert } from "../ErrorAlert";
import { RiskBadge } from "../RiskBadge";
import { serverState } from "../ServerStatus";
import { RiskOverride } from "./RiskOverride";
import { ToolRoles } from "./ToolRoles";

const STATE: Record<string, { label: string; color: string } | undefined> = {
  quarantined: { label: "Held for review", color: "orange" },
  rejected: { label: "Rejected", color: "red" },
};

/** A server's tools (free JSON from the server, plus Warden's verdict). */
export function useTools(name: string, enabled = true) {
  const call = useAsk();
  return useQuery({
    queryKey: keys.tools(name),
    queryFn: async () => (await call({ call: "server_tools", name }, "tools")) as unknown as ToolJson[],
    enabled,
  });
}

export function ToolsTable({
  server,
  roles,
  admin,
}: {
  server: ServerInfo;
  roles: Role[] | undefined;
  admin: boolean;
}) {
  const ready = serverState(server) === "ready";
  const tools = useTools(server.name, ready);
  if (!ready) {
    return (
      <Text size="sm" c="dimmed">
        Its tools show here once the server is ready.
      </Text>
    );
  }
  if (tools.isPending) {
    return (
      <Stack gap="xs">
        <Skeleton h={28} />
        <Skeleton h={28} />
      </Stack>
    );
  }
  if (tools.isError) return <ErrorAlert error={tools.error} onRetry={() => void tools.refetch()} />;
  if (tools.data.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        This server offers no tools.
      </Text>
    );
  }
  return (
    <Table.ScrollContainer minWidth={640}>
      <Table verticalSpacing="sm" highlightOnHover layout="fixed">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Tool</Table.Th>
            <Table.Th w={150}>Risk</Table.Th>
            {admin ? <Table.Th w="38%">Roles that may use it</Table.Th> : null}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {tools.data.map((t) => {
            const risk = t.warden?.risk ?? "high";
            const state = STATE[t.warden?.state ?? ""];
            return (
              <Table.Tr key={t.name} data-testid={`tool-${t.name}`}>
                <Table.Td>
                  <Stack gap={2}>
                    <Group gap="xs">
                      <Text size="sm" fw={600} ff="monospace">
                        {t.name}
                      </Text>
                      {t.title || t.annotations?.title ? (
                        <Text size="sm" c="dimmed">
                          {t.title ?? t.annotations?.title}
                        </Text>
                      ) : null}
                      {state ? (
                        <Badge size="xs" color={state.color} variant="light">
                          {state.label}
                        </Badge>
                      ) : null}
                    </Group>
                    {t.description ? (
                      // Three whole lines of xs text (16.8 px each), never a line cut in half.
                      <Spoiler maxHeight={50} showLabel="More" hideLabel="Less">
                        <Text size="xs" c="dimmed">
                          {t.description}
                        </Text>
                      </Spoiler>
                    ) : null}
                  </Stack>
                </Table.Td>
                <Table.Td>
                  <Group gap={4} wrap="nowrap">
                    <RiskBadge risk={risk} why={t.warden?.why} />
                    {admin ? <RiskOverride server={server.name} tool={t.name} risk={risk} /> : null}
                  </Group>
                </Table.Td>
                {admin ? (
                  <Table.Td>
                    {roles ? (
                      <ToolRoles server={server.name} tool={t.name} roles={roles} risk={risk} />
                    ) : (
                      <Skeleton h={20} w={120} />
                    )}
                  </Table.Td>
                ) : null}
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
