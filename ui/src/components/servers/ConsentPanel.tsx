// A server that has not started: an admin reads its exact command (for a
// remote server, its address and headers) and approves it with a fresh code.
import { useState } from "react";
import { Alert, Button, Code, Stack, Text } from "@mantine/core";
import { IconTerminal2 } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../../api";
import { CodeApproval } from "../CodeApproval";
import { ErrorAlert } from "../ErrorAlert";

export function ConsentPanel({ name, admin, remote }: { name: string; admin: boolean; remote: boolean }) {
  const call = useAsk();
  const [asking, setAsking] = useState(false);
  const consent = useCall(keys.consent(name), { call: "server_consent", name, hash: null, totp: null }, "consent", {
    enabled: admin && asking,
  });
  const approve = useAction(
    (v: { hash: string; totp: string }) => call({ call: "server_consent", name, hash: v.hash, totp: v.totp }, "done"),
    { invalidate: [keys.servers, keys.consent(name)], onSuccess: () => setAsking(false) },
  );
  if (!admin) {
    return (
      <Text size="sm" c="dimmed">
        {remote
          ? "An admin needs to approve this server's address before Warden connects to it."
          : "An admin needs to approve this server's command before it starts."}
      </Text>
    );
  }
  if (!asking) {
    return (
      <Button
        size="xs"
        variant="light"
        color="orange"
        leftSection={<IconTerminal2 size={16} />}
        onClick={() => setAsking(true)}
        data-testid="consent-show"
      >
        {remote ? "Review its address" : "Review its command"}
      </Button>
    );
  }
  if (consent.isPending) return <Text size="sm">Loading what to approve…</Text>;
  if (consent.isError) return <ErrorAlert error={consent.error} onRetry={() => void consent.refetch()} />;
  const c = consent.data;
  return (
    <Alert color="orange" variant="light" title={c.remote ? "Approve this address?" : "Approve this command?"}>
      <Stack gap="xs">
        <Text size="sm">
          {c.remote
            ? "The server's entry in Warden's configuration changed or is new. Warden will send agents' calls to this address, with these headers (secrets by their name in the keychain):"
            : "This is exactly what will run on this computer, with your permissions:"}
        </Text>
        <Code block data-testid="consent-command">
          {c.command_line}
        </Code>
        {c.approved ? (
          <Text size="sm" c="teal.8">
            Approved{c.approved_by ? ` by ${c.approved_by}` : ""}.
          </Text>
        ) : (
          <CodeApproval
            label={c.remote ? "Approve and connect" : "Approve and start"}
            busy={approve.isPending}
            testId="consent"
            onApprove={(totp) => approve.mutate({ hash: c.hash, totp })}
            onCancel={() => setAsking(false)}
          />
        )}
        <ErrorAlert error={approve.error} />
      </Stack>
    </Alert>
  );
}
