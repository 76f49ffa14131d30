// A remote server's sign-in, for admins: where Warden is signed in, what it
// may do there, when the sign-in renews, what went wrong, and the buttons to
// sign in again or sign out.
import { useEffect, useRef, useState } from "react";
import { Alert, Button, Group, Loader, Modal, Stack, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconKey } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { keys, useAction, useAsk, useCall } from "../../api";
import { toFailure } from "../../backend";
import type { ServerAuth } from "../../bindings/ServerAuth";
import type { ServerInfo } from "../../types";
import { CopyField } from "../CopyField";
import { ErrorAlert } from "../ErrorAlert";
import { TimeAgo } from "../TimeAgo";

type Flow =
  | { phase: "idle" }
  | { phase: "starting" }
  | { phase: "waiting"; url: string; issuer: string }
  | { phase: "error"; error: unknown };

/** The sign-in flow the connect wizard runs, for a server already added. */
function useSignIn(name: string) {
  const call = useAsk();
  const client = useQueryClient();
  const [flow, setFlow] = useState<Flow>({ phase: "idle" });
  const start = async () => {
    setFlow({ phase: "starting" });
    try {
      let started;
      try {
        started = await call(
          { call: "server_login_start", name, client_id: null, client_secret: null, scopes: null },
          "login_started",
        );
      } catch (e) {
        if (/does not use OAuth/i.test(toFailure(e).message)) {
          setFlow({ phase: "idle" });
          notifications.show({
            color: "blue",
            message: `${name} does not ask for a sign-in: Warden guards it for you.`,
          });
          return;
        }
        throw e;
      }
      setFlow({ phase: "waiting", url: started.url, issuer: started.issuer });
      await call({ call: "server_login_finish", flow: started.flow }, "signed_in_to");
      setFlow({ phase: "idle" });
      await Promise.all([
        client.invalidateQueries({ queryKey: keys.serverAuth }),
        client.invalidateQueries({ queryKey: keys.servers }),
      ]);
      notifications.show({ color: "teal", message: `Warden is signed in to ${name}.` });
    } catch (e) {
      setFlow({ phase: "error", error: e });
    }
  };
  return { flow, start, reset: () => setFlow({ phase: "idle" }) };
}

export function SignInPanel({
  server,
  autoStart,
  onAutoStarted,
}: {
  server: ServerInfo;
  /** Opened from the "Sign in again" notification: start right away. */
  autoStart: boolean;
  onAutoStarted: () => void;
}) {
  const call = useAsk();
  const auths = useCall(keys.serverAuth, { call: "server_auth_list" }, "server_auths");
  const signIn = useSignIn(server.name);
  const [confirmOut, setConfirmOut] = useState(false);
  const started = useRef(false);
  useEffect(() => {
    // Cleared once the route no longer asks, so a later notification starts it again.
    if (!autoStart) started.current = false;
    if (autoStart && !started.current && auths.isSuccess) {
      started.current = true;
      onAutoStarted();
      void signIn.start();
    }
  }, [autoStart, auths.isSuccess, signIn, onAutoStarted]);
  const signOut = useAction(() => call({ call: "server_logout", name: server.name }, "done"), {
    invalidate: [keys.serverAuth, keys.servers],
    onSuccess: () => {
      setConfirmOut(false);
      notifications.show({ color: "gray", message: `Warden signed out of ${server.name}.` });
    },
  });

  if (auths.isPending) return null;
  if (auths.isError) return <ErrorAlert error={auths.error} onRetry={() => void auths.refetch()} />;
  const auth: ServerAuth | undefined = auths.data.find((a) => a.server === server.name);
  const busy = signIn.flow.phase === "starting" || signIn.flow.phase === "waiting";

  return (
    <Stack gap="xs" data-testid="server-signin">
      {auth?.last_error ? (
        <Alert color="red" variant="light" title="The sign-in ended" data-testid="server-signin-problem">
          Warden could not renew its sign-in to {server.name}, so agents cannot use its tools. Sign in again to fix it.
        </Alert>
      ) : null}
      <Group gap="xs" wrap="nowrap" align="flex-start">
        <IconKey size={16} aria-hidden style={{ marginTop: 2, flexShrink: 0 }} />
        {auth ? (
          <Text size="sm">
            Signed in at <b>{auth.issuer}</b>
            {auth.scopes ? <> with access to {auth.scopes}</> : null}
            {auth.signed_in_by ? <> by {auth.signed_in_by}</> : null}.{" "}
            {auth.expires_at_s !== null && !auth.last_error ? (
              <>
                The sign-in renews by itself (next <TimeAgo us={auth.expires_at_s * 1_000_000} />
                ).
              </>
            ) : null}{" "}
            {auth.last_refresh_at_us !== null ? (
              <>
                Last renewed <TimeAgo us={auth.last_refresh_at_us} />.
              </>
            ) : null}
          </Text>
        ) : (
          <Text size="sm" c="dimmed">
            Warden is not signed in to this server. If it asks for a sign-in, its tools fail until someone signs in.
          </Text>
        )}
      </Group>
      {signIn.flow.phase === "waiting" ? (
        <Stack gap={4} data-testid="server-signin-waiting">
          <Group gap="xs" wrap="nowrap" align="flex-start">
            <Loader size="xs" mt={3} style={{ flexShrink: 0 }} />
            <Text size="sm">
              Your browser opened the sign-in page of {signIn.flow.issuer}. Sign in there and allow Warden; this
              continues by itself. If your browser did not open, copy this address into it:
            </Text>
          </Group>
          <CopyField value={signIn.flow.url} label="the sign-in address" testId="server-signin-url" />
        </Stack>
      ) : null}
      {signIn.flow.phase === "error" ? <ErrorAlert error={signIn.flow.error} /> : null}
      <Group gap="xs">
        <Button
          size="xs"
          variant={auth?.last_error || !auth ? "filled" : "light"}
          loading={busy}
          onClick={() => void signIn.start()}
          data-testid="server-signin-again"
        >
          {auth ? "Sign in again" : "Sign in"}
        </Button>
        {auth ? (
          <Button
            size="xs"
            variant="subtle"
            color="gray"
            disabled={busy}
            onClick={() => setConfirmOut(true)}
            data-testid="server-signout"
          >
            Sign out
          </Button>
        ) : null}
      </Group>
      <Modal opened={confirmOut} onClose={() => setConfirmOut(false)} title={`Sign out of ${server.name}?`} centered>
        <Stack>
          <Text size="sm">
            Warden asks {server.name} to cancel its sign-in (where it can) and forgets it. Agents cannot use its tools
            until someone signs in again.
          </Text>
          <ErrorAlert error={signOut.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirmOut(false)}>
              Stay signed in
            </Button>
            <Button
              color="red"
              loading={signOut.isPending}
              onClick={() => signOut.mutate(undefined)}
              data-testid="server-signout-confirm"
            >
              Sign out
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}
