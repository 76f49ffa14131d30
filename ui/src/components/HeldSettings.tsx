// Settings in Warden's configuration file that are looser than an admin
// approved. Any program on this computer can edit that file, so Warden keeps
// the approved values until an admin approves the new ones with a code.
import { useState } from "react";
import { Alert, Button, Group, List, Stack, Text } from "@mantine/core";
import { IconFileAlert } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../api";
import { CodeApproval } from "./CodeApproval";
import { ErrorAlert } from "./ErrorAlert";
import type { HeldSetting } from "../types";

export function HeldSettings({ held }: { held: HeldSetting[] }) {
  const call = useAsk();
  const [asking, setAsking] = useState(false);
  const review = useCall(keys.heldSettings, { call: "settings_approve", hash: null, totp: null }, "settings", {
    enabled: asking,
  });
  const approve = useAction(
    (v: { hash: string; totp: string }) => call({ call: "settings_approve", hash: v.hash, totp: v.totp }, "done"),
    {
      invalidate: [keys.status, keys.heldSettings],
      onSuccess: () => setAsking(false),
    },
  );
  const shown = review.data?.held ?? held;
  return (
    <Alert
      color="orange"
      icon={<IconFileAlert />}
      title="Warden's configuration file asks for looser settings"
      data-testid="held-settings"
    >
      <Stack gap="xs">
        <Text size="sm">
          Someone or some program changed the file. Until an admin approves the change, Warden keeps the settings an
          admin approved:
        </Text>
        <List size="sm">
          {shown.map((h) => (
            <List.Item key={h.setting}>
              The file asks for {h.wanted}. In force now: {h.kept}.
            </List.Item>
          ))}
        </List>
        <Text size="sm">If you did not make this change, leave it unapproved and ask who did.</Text>
        {!asking ? (
          <Group>
            <Button size="xs" color="orange" variant="light" onClick={() => setAsking(true)} data-testid="held-review">
              Approve these settings…
            </Button>
          </Group>
        ) : review.isError ? (
          <ErrorAlert error={review.error} onRetry={() => void review.refetch()} />
        ) : (
          <CodeApproval
            label="Approve and apply"
            busy={approve.isPending || review.isPending}
            ready={!!review.data}
            testId="held"
            onApprove={(totp) => review.data && approve.mutate({ hash: review.data.hash, totp })}
            onCancel={() => setAsking(false)}
          />
        )}
        <ErrorAlert error={approve.error} />
      </Stack>
    </Alert>
  );
}
