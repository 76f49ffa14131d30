// An admin's own rating of a tool's risk, with a reason.
import { useState } from "react";
import { ActionIcon, Button, Group, Popover, SegmentedControl, Stack, Text, TextInput } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconAdjustments } from "@tabler/icons-react";
import { keys, useAction, useAsk } from "../../api";
import { errorLine } from "../../errors";

export function RiskOverride({ server, tool, risk }: { server: string; tool: string; risk: string }) {
  const call = useAsk();
  const [open, setOpen] = useState(false);
  const [level, setLevel] = useState(risk);
  const [reason, setReason] = useState("");
  const save = useAction(
    (v: { risk: string | null }) =>
      call({ call: "tool_risk", server, tool, risk: v.risk, reason: reason.trim() }, "done"),
    {
      invalidate: [keys.tools(server)],
      onSuccess: (_, v) => {
        setOpen(false);
        setReason("");
        notifications.show({
          color: "teal",
          message: v.risk ? `${tool} is now rated ${v.risk} risk.` : `${tool} uses the server's own rating again.`,
        });
      },
      onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
    },
  );
  return (
    <Popover opened={open} onChange={setOpen} trapFocus position="bottom-end" withArrow shadow="md">
      <Popover.Target>
        <ActionIcon
          variant="subtle"
          aria-label={`Change the risk of ${tool}`}
          onClick={() => setOpen((o) => !o)}
          data-testid="tool-risk-edit"
        >
          <IconAdjustments size={16} />
        </ActionIcon>
      </Popover.Target>
      <Popover.Dropdown>
        <Stack gap="xs" w={280}>
          <Text size="sm" fw={600}>
            Risk of {tool}
          </Text>
          <SegmentedControl
            value={level}
            onChange={setLevel}
            data={[
              { value: "low", label: "Low" },
              { value: "high", label: "High" },
              { value: "critical", label: "Critical" },
            ]}
            aria-label="Risk level"
          />
          <Text size="xs" c="dimmed">
            {level === "critical"
              ? "Every call asks a person, who must enter a fresh code to approve."
              : level === "high"
                ? "Calls ask a person unless a role names this tool exactly."
                : "Only reads: roles that may use it do not ask."}
          </Text>
          <TextInput
            label="Why"
            placeholder="For example: it sends email"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
          />
          <Group justify="space-between">
            <Button
              variant="subtle"
              size="xs"
              onClick={() => save.mutate({ risk: null })}
              loading={save.isPending && save.variables?.risk === null}
            >
              Use the server's rating
            </Button>
            <Button
              size="xs"
              onClick={() => save.mutate({ risk: level })}
              loading={save.isPending && save.variables?.risk !== null}
            >
              Save
            </Button>
          </Group>
        </Stack>
      </Popover.Dropdown>
    </Popover>
  );
}
