// First run: create the first admin, set up their authenticator, sign in.
import { useState } from "react";
import { Button, Container, Paper, PasswordInput, Stack, Stepper, Text, TextInput, Title } from "@mantine/core";
import { useAsk } from "../api";
import { isCode } from "../errors";
import { Brand } from "../components/Brand";
import { EnrollmentView } from "../components/EnrollmentView";
import { ErrorAlert } from "../components/ErrorAlert";
import { PasswordStrength } from "../components/PasswordStrength";
import type { Enrollment } from "../types";

/** Why the admin form cannot be sent yet, in words; null when it can. */
export function adminFormProblem(name: string, pw: string, pw2: string): string | null {
  if (!name.trim()) return "Enter a name for your account.";
  if (pw.length < 12) return "The password needs at least 12 characters.";
  if (pw !== pw2) return "The two passwords are not the same. Type them again.";
  return null;
}

export function FirstRun({ onSignedIn }: { onSignedIn: () => void }) {
  const call = useAsk();
  const [step, setStep] = useState(0);
  const [name, setName] = useState("");
  const [pw, setPw] = useState("");
  const [pw2, setPw2] = useState("");
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [saved, setSaved] = useState(false);
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const create = async () => {
    const problem = adminFormProblem(name, pw, pw2);
    if (problem) {
      setError({ code: "invalid_input", message: problem });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const e = await call({ call: "init", admin: name.trim(), password: pw }, "enrolled");
      setEnrollment(e);
      setStep(1);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const signIn = async () => {
    const digits = code.replace(/\s/g, "");
    if (!/^\d{6}$/.test(digits)) {
      setError({ code: "invalid_input", message: "type the 6-digit code your authenticator app shows for Warden" });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await call({ call: "login", name: name.trim(), password: pw, totp: digits, recovery: null }, "signed_in");
      setPw("");
      setPw2("");
      onSignedIn();
    } catch (e) {
      // Here the password was just set, so a refusal is about the code: say
      // what to check, not "name, password or code".
      setError(
        isCode(e, "unauthenticated")
          ? {
              code: "invalid_input",
              message: `that code did not work. Check that you typed the code your app shows for Warden (${name.trim()}), the newest one, and that your phone sets its time automatically (codes depend on the clock); then type the code it shows now`,
            }
          : e,
      );
      setBusy(false);
    }
  };

  return (
    <Container size={680} py="xl">
      <Stack gap="lg">
        <Brand size="lg" />
        <Paper withBorder p="xl" shadow="sm">
          <Stepper active={step} size="sm" mb="xl" allowNextStepsSelect={false}>
            <Stepper.Step label="Your account" description="Name and password" />
            <Stepper.Step label="Second step" description="Authenticator app" />
            <Stepper.Step label="Quick tour" description="What Warden does" />
          </Stepper>

          {step === 0 ? (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                void create();
              }}
            >
              <Stack>
                <Title order={2}>Welcome to Warden</Title>
                <Text c="dimmed">
                  First, create your account. You will be this computer's Warden admin: you decide which tools your AI
                  agents may use.
                </Text>
                <TextInput
                  label="Your name"
                  description="What you type to sign in, for example your first name."
                  autoComplete="username"
                  value={name}
                  onChange={(e) => setName(e.currentTarget.value)}
                  data-testid="firstrun-name"
                  withAsterisk
                />
                <PasswordInput
                  label="Password"
                  autoComplete="new-password"
                  value={pw}
                  onChange={(e) => setPw(e.currentTarget.value)}
                  data-testid="firstrun-password"
                  withAsterisk
                />
                <PasswordStrength password={pw} />
                <PasswordInput
                  label="Password again"
                  autoComplete="new-password"
                  value={pw2}
                  onChange={(e) => setPw2(e.currentTarget.value)}
                  data-testid="firstrun-password2"
                  withAsterisk
                />
                <ErrorAlert error={error} testId="firstrun-error" />
                <Button type="submit" loading={busy} data-testid="firstrun-create">
                  Create my account
                </Button>
              </Stack>
            </form>
          ) : enrollment ? (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                if (saved) void signIn();
              }}
            >
              <Stack gap="lg">
                <EnrollmentView enrollment={enrollment} saved={saved} onSaved={setSaved} />
                <Stack gap="xs">
                  <Title order={4}>3. Sign in</Title>
                  <TextInput
                    label="The 6-digit code your authenticator app shows now"
                    inputMode="numeric"
                    autoComplete="one-time-code"
                    maxLength={7}
                    value={code}
                    onChange={(e) => setCode(e.currentTarget.value)}
                    data-testid="enroll-code"
                    disabled={!saved}
                    description={saved ? undefined : "First tick that you saved your recovery codes."}
                  />
                  <ErrorAlert error={error} testId="enroll-error" title="That code did not work" />
                  <Button type="submit" loading={busy} disabled={!saved} data-testid="enroll-continue">
                    Sign in to Warden
                  </Button>
                </Stack>
              </Stack>
            </form>
          ) : null}
        </Paper>
      </Stack>
    </Container>
  );
}
