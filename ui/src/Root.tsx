import "@mantine/core/styles.css";
import "@mantine/notifications/styles.css";
import "@mantine/charts/styles.css";
import "@mantine/dates/styles.css";
import { MantineProvider } from "@mantine/core";
import { Notifications } from "@mantine/notifications";
import { QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useState } from "react";
import { HashRouter } from "react-router";
import { BackendProvider, keys } from "./api";
import { App } from "./App";
import type { Backend } from "./backend";
import { CrashScreen } from "./components/CrashScreen";
import { MfaProvider } from "./components/MfaProvider";
import { isCode } from "./errors";
import { theme } from "./theme";

export function makeQueryClient(): QueryClient {
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({
      // A session that ended (expired, signed out elsewhere) shows on any
      // call: look at the status again, which leads back to sign-in.
      onError: (e, query) => {
        if (isCode(e, "unauthenticated") && query.queryKey[0] !== keys.status[0]) {
          void client.invalidateQueries({ queryKey: keys.status });
        }
      },
    }),
    defaultOptions: {
      queries: {
        retry: (count, e) => count < 1 && isCode(e, "unavailable"),
        refetchOnWindowFocus: false,
        staleTime: 5_000,
      },
    },
  });
  return client;
}

export function Root({
  backend,
  queryClient,
  env,
}: {
  backend: Backend;
  queryClient?: QueryClient;
  /** "test" turns off Mantine's transitions and portals (unit tests). */
  env?: "default" | "test";
}) {
  const [client] = useState(() => queryClient ?? makeQueryClient());
  return (
    <MantineProvider theme={theme} defaultColorScheme="light" env={env}>
      <Notifications position="bottom-right" />
      <QueryClientProvider client={client}>
        <BackendProvider backend={backend}>
          <MfaProvider backend={backend}>
            <HashRouter>
              <CrashScreen>
                <App />
              </CrashScreen>
            </HashRouter>
          </MfaProvider>
        </BackendProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}
