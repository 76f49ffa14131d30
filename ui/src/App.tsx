import { Center, Container, Loader, Stack, Text } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { useLocation } from "react-router";
import { keys, useCall } from "./api";
import { ErrorAlert } from "./components/ErrorAlert";
import { useBackendEvents } from "./events";
import { FirstRun } from "./screens/FirstRun";
import { Prompt } from "./screens/Prompt";
import { Shell } from "./Shell";
import { SignIn } from "./screens/SignIn";

export function App() {
  const { pathname } = useLocation();
  const isPrompt = pathname === "/prompt";
  useBackendEvents({ navigate: !isPrompt });
  return isPrompt ? <Prompt /> : <Gate />;
}

/** First run, sign-in or the app, by the install's status. */
function Gate() {
  const client = useQueryClient();
  const status = useCall(keys.status, { call: "status" }, "status");
  const [tour, setTour] = useState(false);
  // Once first run starts it stays on screen until its sign-in, even though
  // the install counts as set up right after the admin is created.
  const firstRun = useRef(false);
  // Set once its sign-in succeeded: the status on screen until the refetch
  // lands still says "not set up", which must not start first run again.
  const firstRunOver = useRef(false);
  const userId = status.data?.user?.id ?? null;
  const lastUser = useRef<number | null>(userId);

  useEffect(() => {
    // The person signed out or their session ended: drop what they saw.
    if (lastUser.current !== null && lastUser.current !== userId) {
      client.removeQueries({ predicate: (q) => q.queryKey[0] !== keys.status[0] });
    }
    lastUser.current = userId;
  }, [userId, client]);

  if (status.isPending) {
    return (
      <Center h="100vh">
        <Stack align="center" gap="xs">
          <Loader />
          <Text c="dimmed">Starting Warden…</Text>
        </Stack>
      </Center>
    );
  }
  if (status.isError) {
    return (
      <Container size="sm" py="xl">
        <ErrorAlert error={status.error} onRetry={() => void status.refetch()} />
      </Container>
    );
  }
  const s = status.data;
  const signedIn = () => {
    void client.invalidateQueries({ queryKey: keys.status });
  };
  if (!s.initialized && !firstRunOver.current) firstRun.current = true;
  if (firstRun.current) {
    return (
      <FirstRun
        onSignedIn={() => {
          firstRun.current = false;
          firstRunOver.current = true;
          setTour(true);
          signedIn();
        }}
      />
    );
  }
  if (!s.user) return <SignIn sso={s.sso} onSignedIn={signedIn} />;
  return <Shell status={s} user={s.user} tour={tour} onTourClosed={() => setTour(false)} />;
}
