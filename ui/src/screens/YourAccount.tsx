// Settings → Your account: a new password, new recovery codes, a new phone.
// Each one asks for the current password (it seals the authenticator), and
// shows what is new once.
import { useState } from "react";
import { Button, Card, Code, Group, PasswordInput, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useAction, useAsk } from "../api";
import { EnrollmentView } from "../components/EnrollmentView";
import { ErrorAlert } from "../components/ErrorAlert";
import { PasswordStrength } from "../components/PasswordStrength";
import type { Enrollment } from "../types";

export function passwordChangeProblem(current: string, next: string, again: string): string | null {
  if (!current) return "Enter your current password.";
  if (next.length < 12) return "Choose a new password of at least 12 characters.";
  if (next !== again) return "The two new passwords are not the same.";
  if (next === current) return "The new password is the same as the current one.";
  return null;
}

function ChangePassword() {
  const call = useAsk();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [changed, setChanged] = useState(false);
  const change = useAction(() => call({ call: "password_change", current, new: next }, "done"), {
    onSuccess: () => {
      setCurrent("");
      setNext("");
      setAgain("");
      setChanged(true);
    },
  });
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        const p = passwordChangeProblem(current, next, again);
        setProblem(p);
        setChanged(false);
        if (!p) change.mutate(undefined);
      }}
    >
      <Stack gap="xs">
        <Title order={4}>Change your password</Title>
        <PasswordInput
          label="Current password"
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.currentTarget.value)}
          data-testid="account-current"
        />
        <PasswordInput
          label="New password"
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.currentTarget.value)}
          data-testid="account-new"
        />
        <PasswordStrength password={next} />
        <PasswordInput
          label="New password again"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.currentTarget.value)}
          data-testid="account-again"
        />
        {problem ? (
          <Text size="sm" c="red.8" data-testid="account-password-problem">
            {problem}
          </Text>
        ) : null}
        {changed ? (
          <Text size="sm" c="teal.8" data-testid="account-password-changed">
            Your password is changed. Use the new one from now on; other places where you were signed in are signed out.
          </Text>
        ) : null}
        <ErrorAlert error={change.error} testId="account-password-error" />
        <Group>
          <Button type="submit" loading={change.isPending} data-testid="account-password-save">
            Change password
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

/** A password field and a button: the step both of the others start with. */
function WithPassword({
  label,
  busy,
  testId,
  onGo,
}: {
  label: string;
  busy: boolean;
  testId: string;
  onGo: (password: string) => void;
}) {
  const [pw, setPw] = useState("");
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (pw) onGo(pw);
      }}
    >
      <Group align="flex-end" gap="xs">
        <PasswordInput
          label="Your password"
          autoComplete="current-password"
          w={280}
          value={pw}
          onChange={(e) => setPw(e.currentTarget.value)}
          data-testid={`${testId}-password`}
        />
        <Button type="submit" variant="light" loading={busy} disabled={!pw} data-testid={`${testId}-go`}>
          {label}
        </Button>
      </Group>
    </form>
  );
}

function NewRecoveryCodes() {
  const call = useAsk();
  const [codes, setCodes] = useState<string[] | null>(null);
  const renew = useAction((password: string) => call({ call: "recovery_renew", password }, "recovery_codes"), {
    onSuccess: (c) => setCodes(c),
  });
  return (
    <Stack gap="xs">
      <Title order={4}>New recovery codes</Title>
      <Text size="sm">
        Used a few, or lost the list? New codes replace all the old ones, which stop working at once.
      </Text>
      {codes ? (
        <Stack gap="xs" data-testid="account-recovery-codes">
          <Text size="sm" fw={600}>
            Your new recovery codes, each usable once. Save them now: they are shown only this time.
          </Text>
          <SimpleGrid cols={2} spacing={4}>
            {codes.map((c) => (
              <Code key={c}>{c}</Code>
            ))}
          </SimpleGrid>
          <Group>
            <Button variant="default" size="xs" onClick={() => setCodes(null)} data-testid="account-recovery-done">
              I saved them
            </Button>
          </Group>
        </Stack>
      ) : (
        <WithPassword
          label="Make new codes"
          busy={renew.isPending}
          testId="account-recovery"
          onGo={(pw) => renew.mutate(pw)}
        />
      )}
      <ErrorAlert error={renew.error} />
    </Stack>
  );
}

function NewPhone() {
  const call = useAsk();
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [saved, setSaved] = useState(false);
  const reenrol = useAction((password: string) => call({ call: "totp_reenrol", password }, "enrolled"), {
    onSuccess: (e) => {
      setSaved(false);
      setEnrollment(e);
    },
  });
  return (
    <Stack gap="xs">
      <Title order={4}>A new phone</Title>
      <Text size="sm">
        Set up your authenticator app again, for example on a new phone. Codes from the old one stop working, and you
        get new recovery codes.
      </Text>
      {enrollment ? (
        <Stack gap="sm" data-testid="account-new-phone">
          <EnrollmentView enrollment={enrollment} saved={saved} onSaved={setSaved} />
          <Group>
            <Button disabled={!saved} onClick={() => setEnrollment(null)} data-testid="account-new-phone-done">
              Done
            </Button>
          </Group>
        </Stack>
      ) : (
        <WithPassword
          label="Set up again"
          busy={reenrol.isPending}
          testId="account-phone"
          onGo={(pw) => reenrol.mutate(pw)}
        />
      )}
      <ErrorAlert error={reenrol.error} />
    </Stack>
  );
}

export function YourAccount() {
  return (
    <Card data-testid="your-account">
      <Stack gap="lg">
        <Title order={3} size="h4">
          Your account
        </Title>
        <ChangePassword />
        <NewRecoveryCodes />
        <NewPhone />
      </Stack>
    </Card>
  );
}
