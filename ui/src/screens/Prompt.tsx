// The approval prompt: a small always-on-top window the shell opens when a
// call waits for the person. It shows the oldest pending request; after a
// decision the next one, or "Nothing is waiting" and the window closes.
import { useEffect, useMemo, useRef, useState } from "react";
import { Alert, Badge, Box, Center, Group, Loader, Stack, Text, ThemeIcon } from "@mantine/core";
import { IconCircleCheck } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { keys, useBackend, useCall } from "../api";
import { ApprovalCard, GoneNote, type Choice } from "../components/ApprovalCard";
import { Brand } from "../components/Brand";
import { ErrorAlert } from "../components/ErrorAlert";
import { isCode } from "../errors";

const DECIDED: Record<Choice, string> = {
  once: "Allowed once.",
  session: "Allowed for this session.",
  always: "Allowed from now on for these exact arguments.",
  deny: "Denied.",
};

export function Prompt() {
  const backend = useBackend();
  const client = useQueryClient();
  const pending = useCall(keys.approvals, { call: "approvals" }, "approvals", { retry: false });
  const oldest = useMemo(
    () => [...(pending.data?.requests ?? [])].sort((a, b) => a.requested_at_us - b.requested_at_us),
    [pending.data],
  );
  const [shownId, setShownId] = useState<string | null>(null);
  const [note, setNote] = useState<"gone" | Choice | null>(null);
  const handled = useRef(new Set<string>());
  const current = oldest.find((r) => r.id === shownId) ?? null;

  useEffect(() => {
    if (!pending.data) return;
    if (shownId && !oldest.some((r) => r.id === shownId)) {
      // It vanished: answered elsewhere, timed out or withdrawn.
      if (!handled.current.has(shownId)) setNote("gone");
      setShownId(oldest[0]?.id ?? null);
    } else if (!shownId && oldest[0]) {
      setShownId(oldest[0].id);
    }
  }, [pending.data, oldest, shownId]);

  const empty = pending.data !== undefined && oldest.length === 0;
  const hadAny = note !== null;
  useEffect(() => {
    // Close the window once everything is answered (never on first open,
    // so a prompt opened by mistake says why it is empty).
    if (empty && hadAny && backend.shell) {
      const t = setTimeout(() => void backend.shell?.promptClose(), 1500);
      return () => clearTimeout(t);
    }
  }, [empty, hadAny, backend]);

  const decided = (choice: Choice) => {
    if (shownId) handled.current.add(shownId);
    setNote(choice);
    setShownId(null);
    void client.invalidateQueries({ queryKey: keys.approvals });
  };

  const gone = () => {
    setNote("gone");
    void client.invalidateQueries({ queryKey: keys.approvals });
  };

  return (
    <Box p="md" maw={520} mx="auto">
      <Group justify="space-between" mb="sm">
        <Brand />
        {oldest.length > 1 ? (
          <Badge color="orange" variant="light" data-testid="prompt-more">
            {oldest.length - 1} more waiting
          </Badge>
        ) : null}
      </Group>
      <Stack gap="sm">
        {note === "gone" ? <GoneNote onClose={() => setNote(null)} /> : null}
        {note && note !== "gone" && current ? (
          <Alert color={note === "deny" ? "gray" : "teal"} variant="light" data-testid="prompt-done">
            {DECIDED[note]} Here is the next one.
          </Alert>
        ) : null}
        {pending.isPending ? (
          <Center py="xl">
            <Loader />
          </Center>
        ) : pending.isError ? (
          isCode(pending.error, "unauthenticated") ? (
            <Alert color="blue" variant="light" title="Sign in first">
              Open the main Warden window and sign in; then the requests waiting for you show here.
            </Alert>
          ) : (
            <ErrorAlert error={pending.error} onRetry={() => void pending.refetch()} />
          )
        ) : current ? (
          <ApprovalCard key={current.id} request={current} onDecided={decided} onGone={gone} autoFocus />
        ) : (
          <Stack align="center" py="xl" gap="xs" data-testid="prompt-empty">
            <ThemeIcon size={48} radius="xl" color="teal" variant="light">
              <IconCircleCheck size={30} />
            </ThemeIcon>
            <Text fw={600}>Nothing is waiting</Text>
            <Text size="sm" c="dimmed" ta="center">
              {note && note !== "gone" ? `${DECIDED[note]} ` : ""}No agent is waiting for your answer.
            </Text>
          </Stack>
        )}
      </Stack>
    </Box>
  );
}
