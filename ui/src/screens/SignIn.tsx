// Sign in: name, password and a code from the authenticator app (or a
// recovery code); with single sign-on set up, the company account too.
import { useRef, useState } from "react";
import {
  Anchor,
  Button,
  Container,
  Divider,
  Group,
  Loader,
  Paper,
  PasswordInput,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { IconBuilding } from "@tabler/icons-react";
import { useAsk } from "../api";
import { Brand } from "../components/Brand";
import { CopyField } from "../components/CopyField";
import { ErrorAlert } from "../components/ErrorAlert";
import { toFailure } from "../backend";
import { isCode } from "../errors";
import { Enrol } from "./Enrol";

export interface SignInFields {
  name: string;
  password: string;
  code: string;
  recovery: string;
  useRecovery: boolean;
}

/** What is missing from the sign-in form, in words; null when complete. */
export function signInProblem(f: SignInFields): string | null {
  if (!f.name.trim()) return "Enter your name.";
  if (!f.password) return "Enter your password.";
  if (f.useRecovery) {
    if (!f.recovery.trim()) return "Enter one of your recovery codes.";
  } else if (!/^\d{6}$/.test(f.code.replace(/\s/g, ""))) {
    return "Enter the 6-digit code from your authenticator app, or use a recovery code.";
  }
  return null;
}

/** Whether an SSO refusal says a Warden code may stand in for the provider's MFA. */
export function offersCodeFallback(message: string): boolean {
  return /multi-factor|mfa/i.test(message) && /warden authenticator|code from your warden/i.test(message);
}

type Sso =
  { state: "idle" } | { state: "waiting"; url: string; issuer: string } | { state: "fallback"; message: string };

export function SignIn({ sso, onSignedIn }: { sso: boolean; onSignedIn: () => void }) {
  const call = useAsk();
  const [f, setF] = useState<SignInFields>({ name: "", password: "", code: "", recovery: "", useRecovery: false });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [ssoState, setSso] = useState<Sso>({ state: "idle" });
  const [ssoCode, setSsoCode] = useState("");
  const attempt = useRef(0);
  const [enrolling, setEnrolling] = useState(false);

  const set = (patch: Partial<SignInFields>) => setF((old) => ({ ...old, ...patch }));

  const submit = async () => {
    const problem = signInProblem(f);
    if (problem) {
      setError({ code: "invalid_input", message: problem });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await call(
        {
          call: "login",
          name: f.name.trim(),
          password: f.password,
          totp: f.useRecovery ? null : f.code.replace(/\s/g, ""),
          recovery: f.useRecovery ? f.recovery.trim() : null,
        },
        "signed_in",
      );
      onSignedIn();
    } catch (e) {
      // The code stays: when the password was the wrong part, it still works.
      setError(e);
      setBusy(false);
    }
  };

  const startSso = async (totp: string | null) => {
    const mine = ++attempt.current;
    setError(null);
    try {
      const started = await call({ call: "sso_login_start" }, "sso_started");
      if (mine !== attempt.current) return;
      setSso({ state: "waiting", url: started.url, issuer: started.issuer });
      await call({ call: "sso_login_finish", flow: started.flow, totp }, "signed_in");
      if (mine !== attempt.current) return;
      onSignedIn();
    } catch (e) {
      if (mine !== attempt.current) return;
      const message = toFailure(e).message;
      if (offersCodeFallback(message)) {
        setSso({ state: "fallback", message });
      } else {
        setSso({ state: "idle" });
        setError(e);
      }
    }
  };

  const cancelSso = () => {
    attempt.current++;
    setSso({ state: "idle" });
  };

  return (
    <Container size={460} py={60}>
      <Stack gap="lg">
        <Group justify="center">
          <Brand size="lg" />
        </Group>
        <Paper withBorder shadow="sm" p="xl">
          {enrolling ? (
            <Enrol
              onBack={(name) => {
                setEnrolling(false);
                if (name) set({ name, password: "", code: "" });
              }}
            />
          ) : ssoState.state === "waiting" ? (
            <Stack>
              <Group gap="sm">
                <Loader size="sm" />
                <Title order={3}>Finish signing in in your browser</Title>
              </Group>
              <Text size="sm">
                Your browser opened {ssoState.issuer ? <b>{ssoState.issuer}</b> : "your company's sign-in page"}. Sign
                in there; this window continues by itself.
              </Text>
              <Text size="sm" c="dimmed">
                If your browser did not open, copy this address into it:
              </Text>
              <CopyField value={ssoState.url} label="the sign-in address" testId="sso-url" />
              <Button variant="default" onClick={cancelSso}>
                Cancel
              </Button>
            </Stack>
          ) : ssoState.state === "fallback" ? (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                const digits = ssoCode.replace(/\s/g, "");
                if (/^\d{6}$/.test(digits)) void startSso(digits);
                else
                  setError({
                    code: "invalid_input",
                    message: "type the 6-digit code from your Warden authenticator app",
                  });
              }}
            >
              <Stack>
                <Title order={3}>One more step</Title>
                <Text size="sm">
                  Your company sign-in worked, but it did not use a second step (like a code or security key), which
                  Warden requires. Enter the code from your Warden authenticator app, then sign in at your company
                  again.
                </Text>
                <TextInput
                  label="6-digit code from your authenticator app"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  maxLength={7}
                  value={ssoCode}
                  onChange={(e) => setSsoCode(e.currentTarget.value)}
                  data-testid="sso-code"
                />
                <ErrorAlert error={error} testId="signin-error" title="Could not sign in" />
                <Group justify="space-between">
                  <Button variant="default" onClick={cancelSso}>
                    Back
                  </Button>
                  <Button type="submit" data-testid="sso-retry">
                    Sign in again with this code
                  </Button>
                </Group>
              </Stack>
            </form>
          ) : (
            <Stack>
              <form
                onSubmit={(e) => {
                  e.preventDefault();
                  void submit();
                }}
              >
                <Stack>
                  <Title order={2}>Sign in</Title>
                  <Text size="sm" c="dimmed" data-testid="signin-unlock-note">
                    Your password also unlocks Warden&apos;s records of who you are, which stay locked each time Warden
                    starts until someone signs in with a password.
                  </Text>
                  <TextInput
                    label="Name"
                    autoComplete="username"
                    value={f.name}
                    onChange={(e) => set({ name: e.currentTarget.value })}
                    data-testid="signin-name"
                    data-autofocus
                  />
                  <PasswordInput
                    label="Password"
                    autoComplete="current-password"
                    value={f.password}
                    onChange={(e) => set({ password: e.currentTarget.value })}
                    data-testid="signin-password"
                  />
                  {f.useRecovery ? (
                    <TextInput
                      label="Recovery code"
                      description="One of the codes you saved when you set up your account. Each works once."
                      autoComplete="off"
                      value={f.recovery}
                      onChange={(e) => set({ recovery: e.currentTarget.value })}
                      data-testid="signin-recovery"
                    />
                  ) : (
                    <TextInput
                      label="Code from your authenticator app"
                      description="The 6 digits it shows for Warden right now."
                      inputMode="numeric"
                      autoComplete="one-time-code"
                      maxLength={7}
                      value={f.code}
                      onChange={(e) => set({ code: e.currentTarget.value })}
                      data-testid="signin-code"
                    />
                  )}
                  <Anchor
                    component="button"
                    type="button"
                    size="sm"
                    onClick={() => set({ useRecovery: !f.useRecovery })}
                    data-testid="signin-use-recovery"
                  >
                    {f.useRecovery ? "Use a code from my authenticator app" : "Lost your phone? Use a recovery code"}
                  </Anchor>
                  <ErrorAlert error={error} testId="signin-error" title="Could not sign in" />
                  {error && isCode(error, "unauthenticated") && !f.useRecovery ? (
                    <Text size="sm" c="dimmed" data-testid="signin-clock-hint">
                      If the code keeps failing, check that your phone sets its date and time automatically: the codes
                      depend on its clock.
                    </Text>
                  ) : null}
                  <Button type="submit" loading={busy} data-testid="signin-submit">
                    Sign in
                  </Button>
                  <Anchor
                    component="button"
                    type="button"
                    size="sm"
                    onClick={() => {
                      setError(null);
                      setEnrolling(true);
                    }}
                    data-testid="signin-enrol"
                  >
                    New here, with a setup code from your admin? Set up my account
                  </Anchor>
                </Stack>
              </form>
              {sso ? (
                <>
                  <Divider label="or" labelPosition="center" />
                  <Button
                    variant="default"
                    leftSection={<IconBuilding size={18} />}
                    onClick={() => void startSso(null)}
                    data-testid="signin-sso"
                  >
                    Sign in with your company account
                  </Button>
                </>
              ) : null}
            </Stack>
          )}
        </Paper>
      </Stack>
    </Container>
  );
}
