import { Alert, Stack, Text } from "@mantine/core";
import { CopyField } from "../../components/CopyField";
import type { AgentCreated } from "../../types";

/** Whether the credential was also kept in the keychain, and if not why. */
export function keychainNote(created: AgentCreated): string | null {
  const k = created.keychain as unknown;
  if (k && typeof k === "object" && "Err" in k) return String((k as { Err: unknown }).Err);
  return null;
}

/** A new agent credential: shown once, with a copy button. */
export function CredentialShown({ created }: { created: AgentCreated }) {
  const problem = keychainNote(created);
  return (
    <Stack gap="xs" data-testid="agent-credential">
      <Text size="sm">
        The credential for <b>{created.agent.name}</b>. Copy it now: Warden keeps only a fingerprint of it and cannot
        show it again.
      </Text>
      <CopyField value={created.credential} label="the credential" testId="agent-credential-value" />
      {problem ? (
        <Alert color="orange" variant="light">
          It could not be saved in this computer's keychain ({problem}), so `warden connect` cannot find it by itself:
          paste it where your app asks for it.
        </Alert>
      ) : (
        <Text size="xs" c="dimmed">
          It is also saved in this computer's keychain for `warden connect {created.agent.name}`.
        </Text>
      )}
    </Stack>
  );
}
