// Settings: your account (everyone); approvals and single sign-on (admins);
// starting with the computer.
import { useEffect, useState } from "react";
import {
  ActionIcon,
  Alert,
  Button,
  Card,
  Code,
  Group,
  NumberInput,
  PasswordInput,
  Skeleton,
  Stack,
  Switch,
  TagsInput,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconPlus, IconTrash } from "@tabler/icons-react";
import { keys, useAction, useAsk, useBackend, useCall } from "../api";
import { ErrorAlert } from "../components/ErrorAlert";
import { errorLine } from "../errors";
import type { SsoConfig } from "../types";
import { YourAccount } from "./YourAccount";

export const SSO_DEFAULTS: SsoConfig = {
  issuer: "",
  client_id: "",
  scopes: "openid profile email groups offline_access",
  groups_claim: "groups",
  group_roles: {},
  mfa_amr: ["mfa", "otp", "hwk", "swk", "sc", "fpt", "face"],
  mfa_acr: [],
  max_age_secs: null,
  create_people: false,
  username_claim: "preferred_username",
  refresh_secs: 300,
  has_client_secret: false,
  totp_fallback: false,
};

export function Settings({ admin = true }: { admin?: boolean }) {
  const status = useCall(keys.status, { call: "status" }, "status");
  return (
    <Stack gap="lg" maw={860}>
      <Title order={2}>Settings</Title>
      <YourAccount />
      {admin ? (
        <>
          <Card>
            <Title order={3} size="h4" mb="xs">
              Approvals
            </Title>
            <Text size="sm">
              How long Warden waits for an answer before denying a call is set in Warden's configuration file. A longer
              wait, or turning notifications off, takes effect only once an admin approves it with a code (Home shows
              what waits), so no program can change it behind your back.
              {status.data?.data_dir ? (
                <>
                  {" "}
                  Warden keeps its data in <Code>{status.data.data_dir}</Code>.
                </>
              ) : null}
            </Text>
          </Card>
          <SsoSettings />
        </>
      ) : null}
      <StartAtLogin />
    </Stack>
  );
}

function SsoSettings() {
  const call = useAsk();
  const sso = useCall(keys.sso, { call: "sso_show" }, "sso");
  const [cfg, setCfg] = useState<SsoConfig>(SSO_DEFAULTS);
  const [secret, setSecret] = useState("");
  const [groups, setGroups] = useState<[string, string][]>([]);
  useEffect(() => {
    if (sso.data) {
      setCfg(sso.data);
      setGroups(Object.entries(sso.data.group_roles).map(([g, r]) => [g, r ?? ""]));
    }
  }, [sso.data]);
  const set = (patch: Partial<SsoConfig>) => setCfg((c) => ({ ...c, ...patch }));
  const save = useAction(
    () => {
      const group_roles = Object.fromEntries(
        groups.filter(([g, r]) => g.trim() && r.trim()).map(([g, r]) => [g.trim(), r.trim()]),
      );
      return call({ call: "sso_configure", config: { ...cfg, group_roles }, client_secret: secret || null }, "done");
    },
    {
      invalidate: [keys.sso, keys.status],
      onSuccess: () => {
        setSecret("");
        notifications.show({
          color: "teal",
          message: "Single sign-on is set up. People can now sign in with their company account.",
        });
      },
    },
  );
  if (sso.isPending) return <Skeleton h={200} />;
  if (sso.isError) return <ErrorAlert error={sso.error} onRetry={() => void sso.refetch()} />;
  return (
    <Card>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate(undefined);
        }}
      >
        <Stack>
          <Stack gap={2}>
            <Title order={3} size="h4">
              Company sign-in (for IT): single sign-on
            </Title>
            <Text size="sm" c="dimmed">
              Let people sign in with their company account (OpenID Connect). Register Warden with your identity
              provider as a desktop app first; it needs no fixed redirect address.
            </Text>
          </Stack>
          {sso.data ? null : (
            <Alert color="gray" variant="light">
              Not set up yet: people sign in with a Warden password and code.
            </Alert>
          )}
          <TextInput
            label="Identity provider address (issuer)"
            placeholder="https://login.example.com"
            value={cfg.issuer}
            onChange={(e) => set({ issuer: e.currentTarget.value })}
            withAsterisk
            data-testid="sso-issuer"
          />
          <TextInput
            label="Client ID"
            value={cfg.client_id}
            onChange={(e) => set({ client_id: e.currentTarget.value })}
            withAsterisk
            data-testid="sso-client-id"
          />
          <PasswordInput
            label="Client secret"
            description={
              cfg.has_client_secret
                ? "A secret is stored in the keychain. Leave empty to keep it."
                : "Only if your provider gave Warden one."
            }
            value={secret}
            onChange={(e) => setSecret(e.currentTarget.value)}
          />
          <TextInput label="Scopes" value={cfg.scopes} onChange={(e) => set({ scopes: e.currentTarget.value })} />
          <Group grow>
            <TextInput
              label="Claim that names the person"
              value={cfg.username_claim}
              onChange={(e) => set({ username_claim: e.currentTarget.value })}
            />
            <TextInput
              label="Claim that lists their groups"
              value={cfg.groups_claim}
              onChange={(e) => set({ groups_claim: e.currentTarget.value })}
            />
          </Group>
          <Stack gap={4}>
            <Text size="sm" fw={500}>
              Groups and roles
            </Text>
            <Text size="xs" c="dimmed">
              A provider group mapped to "admin" or "member" sets the person's role; any other role is one they may give
              their agents.
            </Text>
            {groups.map(([g, r], i) => (
              <Group key={i} gap="xs" wrap="nowrap">
                <TextInput
                  aria-label="Provider group"
                  placeholder="Group"
                  value={g}
                  onChange={(e) => setGroups(groups.map((x, j) => (j === i ? [e.currentTarget.value, x[1]] : x)))}
                  style={{ flex: 1 }}
                />
                <TextInput
                  aria-label="Warden role"
                  placeholder="Role"
                  value={r}
                  onChange={(e) => setGroups(groups.map((x, j) => (j === i ? [x[0], e.currentTarget.value] : x)))}
                  style={{ flex: 1 }}
                />
                <ActionIcon
                  variant="subtle"
                  color="red"
                  aria-label="Remove this group"
                  onClick={() => setGroups(groups.filter((_, j) => j !== i))}
                >
                  <IconTrash size={16} />
                </ActionIcon>
              </Group>
            ))}
            <Group>
              <Button
                size="xs"
                variant="subtle"
                leftSection={<IconPlus size={14} />}
                onClick={() => setGroups([...groups, ["", ""]])}
              >
                Add a group
              </Button>
            </Group>
          </Stack>
          <TagsInput
            label="Sign-in methods that count as a second step (amr)"
            value={cfg.mfa_amr}
            onChange={(mfa_amr) => set({ mfa_amr })}
          />
          <TagsInput
            label="Assurance levels that count as a second step (acr)"
            value={cfg.mfa_acr}
            onChange={(mfa_acr) => set({ mfa_acr })}
          />
          <Group grow>
            <NumberInput
              label="Oldest provider sign-in accepted (seconds)"
              description="Empty: any age."
              min={0}
              value={cfg.max_age_secs ?? ""}
              onChange={(v) => set({ max_age_secs: typeof v === "number" ? v : null })}
            />
            <NumberInput
              label="Check back with the provider every (seconds)"
              min={60}
              value={cfg.refresh_secs}
              onChange={(v) => set({ refresh_secs: typeof v === "number" ? v : SSO_DEFAULTS.refresh_secs })}
            />
          </Group>
          <Switch
            label="Add people on their first sign-in (as members)"
            checked={cfg.create_people}
            onChange={(e) => set({ create_people: e.currentTarget.checked })}
          />
          <Switch
            label="Accept a Warden code when the provider's sign-in had no second step"
            checked={cfg.totp_fallback}
            onChange={(e) => set({ totp_fallback: e.currentTarget.checked })}
          />
          <ErrorAlert error={save.error} />
          <Group justify="flex-end">
            <Button
              type="submit"
              loading={save.isPending}
              disabled={!cfg.issuer.trim() || !cfg.client_id.trim()}
              data-testid="sso-save"
            >
              Save single sign-on
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}

function StartAtLogin() {
  const backend = useBackend();
  const shell = backend.shell;
  const [enabled, setEnabled] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!shell) return;
    shell.autostartGet().then(setEnabled, (e: unknown) => notifications.show({ color: "red", message: errorLine(e) }));
  }, [shell]);
  if (!shell) return null;
  return (
    <Card>
      <Group justify="space-between">
        <Stack gap={2}>
          <Title order={3} size="h4">
            Start with your computer
          </Title>
          <Text size="sm" c="dimmed">
            Open Warden (in the tray) when you sign in, so your agents can always reach it.
          </Text>
        </Stack>
        <Switch
          aria-label="Start Warden when you sign in to your computer"
          checked={enabled ?? false}
          disabled={enabled === null || busy}
          onChange={(e) => {
            const next = e.currentTarget.checked;
            setBusy(true);
            shell
              .autostartSet(next)
              .then(
                () => setEnabled(next),
                (err: unknown) => notifications.show({ color: "red", message: errorLine(err) }),
              )
              .finally(() => setBusy(false));
          }}
          data-testid="autostart"
        />
      </Group>
    </Card>
  );
}
