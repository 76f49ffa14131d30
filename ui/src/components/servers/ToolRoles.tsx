// Which roles may use one tool, editable in place by admins: a chip per
// role (remove = revoke the grant), and "Add a role" with its effect.
import { useState } from "react";
import { ActionIcon, Badge, Button, Group, Popover, Select, Stack, Text, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconPlus, IconX } from "@tabler/icons-react";
import { keys, useAction, useAsk } from "../../api";
import { errorLine } from "../../errors";
import { EFFECTS, effectLook, grantsFor } from "../../grants";
import type { Role } from "../../types";

export function ToolRoles({
  server,
  tool,
  roles,
  risk,
}: {
  server: string;
  tool: string;
  roles: Role[];
  risk: string;
}) {
  const call = useAsk();
  const grants = grantsFor(roles, server, tool);
  const [open, setOpen] = useState(false);
  const [role, setRole] = useState<string | null>(null);
  const [effect, setEffect] = useState<string | null>(risk === "low" ? "allow" : "ask");
  const notifyError = (e: unknown) => notifications.show({ color: "red", message: errorLine(e) });

  const add = useAction(
    (v: { role: string; effect: string }) =>
      call({ call: "grant", role: v.role, server, pattern: tool, effect: v.effect, explicit: false }, "done"),
    {
      invalidate: [keys.roles],
      onSuccess: () => {
        setOpen(false);
        setRole(null);
      },
      onError: notifyError,
    },
  );
  const remove = useAction((r: string) => call({ call: "revoke_grant", role: r, server, pattern: tool }, "done"), {
    invalidate: [keys.roles],
    onError: notifyError,
  });

  const available = roles.filter((r) => !grants.some((g) => g.exact && g.role === r.name)).map((r) => r.name);

  return (
    <Group gap={4} wrap="wrap" data-testid="tool-roles">
      {grants.length === 0 ? (
        <Text size="xs" c="dimmed">
          No role yet
        </Text>
      ) : null}
      {grants.map((g) => {
        const look = effectLook(g.grant.effect);
        const label = `${g.role}: ${look.label.toLowerCase()}`;
        return (
          <Tooltip
            key={`${g.role}-${g.grant.server}-${g.grant.pattern}`}
            label={
              g.exact
                ? label
                : `${label} (through the rule "${g.grant.pattern}" on ${g.grant.server === "*" ? "every server" : g.grant.server}; change it under People & agents)`
            }
          >
            <Badge
              color={look.color}
              variant="light"
              tabIndex={0}
              rightSection={
                g.exact ? (
                  <ActionIcon
                    size="xs"
                    variant="transparent"
                    color={look.color}
                    aria-label={`Take ${tool} away from the role ${g.role}`}
                    onClick={() => remove.mutate(g.role)}
                    loading={remove.isPending && remove.variables === g.role}
                  >
                    <IconX size={12} />
                  </ActionIcon>
                ) : null
              }
            >
              {g.role}
              {g.exact ? "" : " *"}
            </Badge>
          </Tooltip>
        );
      })}
      <Popover opened={open} onChange={setOpen} trapFocus position="bottom-start" withArrow shadow="md">
        <Popover.Target>
          <ActionIcon
            size="sm"
            variant="subtle"
            aria-label={`Let a role use ${tool}`}
            onClick={() => setOpen((o) => !o)}
            data-testid="tool-role-add"
          >
            <IconPlus size={14} />
          </ActionIcon>
        </Popover.Target>
        <Popover.Dropdown>
          <Stack gap="xs" w={240}>
            <Text size="sm" fw={600}>
              Let a role use {tool}
            </Text>
            {available.length === 0 ? (
              <Text size="sm" c="dimmed">
                Every role already has a rule for this tool. Add roles under People &amp; agents.
              </Text>
            ) : (
              <>
                <Select
                  label="Role"
                  data={available}
                  value={role}
                  onChange={setRole}
                  comboboxProps={{ withinPortal: false }}
                />
                <Select
                  label="Agents with this role"
                  data={EFFECTS.map((e) => ({ value: e.value, label: e.label }))}
                  value={effect}
                  onChange={setEffect}
                  allowDeselect={false}
                  comboboxProps={{ withinPortal: false }}
                />
                {effect === "allow" && risk !== "low" ? (
                  <Text size="xs" c="orange.8">
                    This tool is {risk} risk: naming it exactly lets agents use it without asking you.
                  </Text>
                ) : null}
                <Button
                  size="xs"
                  disabled={!role || !effect}
                  loading={add.isPending}
                  onClick={() => role && effect && add.mutate({ role, effect })}
                >
                  Save
                </Button>
              </>
            )}
          </Stack>
        </Popover.Dropdown>
      </Popover>
    </Group>
  );
}
