// Settings in Warden's configuration file that are looser than an admin
// approved. Any program on this computer can edit that file, so Warden keeps
// the approved values until an admin approves the new ones with a code.
import { useState } from "react";
import { Alert, Button, Group, List, Stack, Text, TextInput } from "@mantine/core";
import { IconFileAlert } from "@tabler/icons-react";
import { keys, useAction, useAsk, useCall } from "../api";
import { ErrorAlert } from "./ErrorAlert";
import type { HeldSetting } from "../types";

export function HeldSettings({ held }: { held: HeldSetting[] }) {
  const call = useAsk();
  const [asking, setAsking] = useState(false);
  const [code, setCode] = useState("");
  const review = useCall(keys.heldSettings, { call: "settings_approve", hash: null, totp: null }, "settings", {
    enabled: asking,
  });
  const approve = useAction(
    (v: { hash: string; totp: string }) => call({ call: "settings_approve", hash: v.hash, totp: v.totp }, "done"),
    {
      invalidate: [keys.status, keys.heldSettings],
      onSuccess: () => {
        setAsking(false);
        setCode("");
      },
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
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (review.data) approve.mutate({ hash: review.data.hash, totp: code.replace(/\s/g, "") });
            }}
          >
            <Group align="flex-end" gap="xs">
              <TextInput
                label="Code from your authenticator app"
                inputMode="numeric"
                autoComplete="one-time-code"
                maxLength={7}
                value={code}
                onChange={(e) => setCode(e.currentTarget.value)}
                data-testid="held-code"
              />
              <Button
                type="submit"
                color="orange"
                loading={approve.isPending || review.isPending}
                disabled={!review.data || !/^\d{6}$/.test(code.replace(/\s/g, ""))}
                data-testid="held-approve"
              >
                Approve and apply
              </Button>
              <Button variant="default" onClick={() => setAsking(false)}>
                Not now
              </Button>
            </Group>
          </form>
        )}
        <ErrorAlert error={approve.error} />
      </Stack>
    </Alert>
  );
}
