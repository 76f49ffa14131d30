// Backend events refresh what they concern; the tray's "Pending approvals"
// asks the main window to go there.
import { useEffect } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { useBackend, keys } from "./api";
import { notifications } from "@mantine/notifications";
import { EVENTS } from "./backend";

export function useBackendEvents({ navigate: allowNavigate }: { navigate: boolean }) {
  const backend = useBackend();
  const client = useQueryClient();
  const navigate = useNavigate();
  useEffect(() => {
    const refresh =
      (...list: readonly (readonly unknown[])[]) =>
      () => {
        for (const queryKey of list) void client.invalidateQueries({ queryKey });
      };
    const stops = [
      backend.on(EVENTS.approvals, refresh(keys.approvals)),
      backend.on(EVENTS.servers, refresh(keys.servers, keys.toolsAll, keys.quarantined, keys.serverAuth)),
      backend.on(EVENTS.activity, refresh(keys.activity)),
      backend.on(EVENTS.session, refresh(keys.status, keys.whoami)),
      // Something the shell did on its own (the tray) and could not finish.
      backend.on(EVENTS.notice, (message) => {
        if (typeof message === "string") notifications.show({ color: "orange", message });
      }),
      backend.on(EVENTS.navigate, (route) => {
        if (allowNavigate && typeof route === "string" && route.startsWith("/")) navigate(route);
      }),
    ];
    return () => stops.forEach((stop) => stop());
  }, [backend, client, navigate, allowNavigate]);
}
