// Setting up an account with the one-time code an admin handed over: the
// person chooses their own password, then adds Warden to their own
// authenticator app and keeps their recovery codes.
import { useState } from "react";
import { Button, Group, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useAsk } from "../api";
import { EnrollmentView } from "../components/EnrollmentView";
import { ErrorAlert } from "../components/ErrorAlert";
import { PasswordStrength } from "../components/PasswordStrength";
import type { Enrollment } from "../types";

/** What is missing from the setup form, in words; null when complete. */
export function enrolProblem(name: string, code: string, password: string, again: string): string | null {
  if (!name.trim()) return "Enter the name your admin gave you.";
  if (code.replace(/[^a-z0-9]/gi, "").length < 20) return "Enter the whole setup code: four groups of five.";
  if (!password) return "Choose a password.";
  if (password !== again) return "The two passwords differ; type the same one twice.";
  return null;
}

export function Enrol({ onBack }: { onBack: (name: string) => void }) {
  const call = useAsk();
  const [name, setName] = useState("");
  const [code, setCode] = useState("");
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [enrolled, setEnrolled] = useState<Enrollment | null>(null);
  const [saved, setSaved] = useState(false);

  const submit = async () => {
    const problem = enrolProblem(name, code, password, again);
    if (problem) {
      setError({ code: "invalid_input", message: problem });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const e = await call({ call: "enrol", name: name.trim(), code: code.trim(), password }, "enrolled");
      setPassword("");
      setAgain("");
      setEnrolled(e);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (enrolled) {
    return (
      <Stack>
        <Title order={3}>Your password is set. Now your authenticator app</Title>
        <EnrollmentView enrollment={enrolled} saved={saved} onSaved={setSaved} />
        <Button onClick={() => onBack(enrolled.user.name)} disabled={!saved} data-testid="enrol-done">
          Continue to sign in
        </Button>
      </Stack>
    );
  }
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <Stack>
        <Title order={2}>Set up my account</Title>
        <Text size="sm">
          Your admin gave you a name and a one-time setup code. Choose your own password here; nobody else sees it.
        </Text>
        <TextInput
          label="Name"
          autoComplete="username"
          value={name}
          onChange={(e) => setName(e.currentTarget.value)}
          data-testid="enrol-name"
          data-autofocus
        />
        <TextInput
          label="Setup code"
          description="Four groups of five letters and digits, like abcde-fghij-klmno-pqrst."
          autoComplete="off"
          value={code}
          onChange={(e) => setCode(e.currentTarget.value)}
          data-testid="enrol-code"
        />
        <PasswordInput
          label="Choose a password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.currentTarget.value)}
          data-testid="enrol-password"
        />
        <PasswordStrength password={password} />
        <PasswordInput
          label="The same password again"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.currentTarget.value)}
          data-testid="enrol-again"
        />
        <ErrorAlert error={error} testId="enrol-error" title="Could not set up your account" />
        <Group justify="space-between">
          <Button variant="default" onClick={() => onBack("")}>
            Back to sign-in
          </Button>
          <Button type="submit" loading={busy} data-testid="enrol-submit">
            Set my password
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
