// Sensitive changes need a fresh authenticator code (within 5 minutes).
// When the API answers `mfa_required`, ask for the code here, confirm it,
// and let the original request run again. When the app could not tell that
// the click was the person's, the API's answer says which change the code is
// for, and the dialog shows those words instead.
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import { Button, Group, Modal, Stack, Text, TextInput } from "@mantine/core";
import { IconShieldLock } from "@tabler/icons-react";
import { ask, type Backend } from "../backend";
import { isCode, MfaCancelled } from "../errors";
import { ErrorAlert } from "./ErrorAlert";

interface Mfa {
  guard<T>(run: () => Promise<T>): Promise<T>;
}

const MfaContext = createContext<Mfa | null>(null);

/** The app's own words when it could not tell a click was the person's. */
function clickNote(e: unknown): string | null {
  const message = (e as { message?: unknown }).message;
  return typeof message === "string" && message.startsWith("Warden could not tell") ? message : null;
}

export function useMfa(): Mfa {
  const m = useContext(MfaContext);
  if (!m) throw new Error("useMfa outside MfaProvider");
  return m;
}

type Waiter = { resolve: () => void; reject: (e: unknown) => void };

export function MfaProvider({ backend, children }: { backend: Backend; children: ReactNode }) {
  const [open, setOpen] = useState(false);
  const [code, setCode] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [why, setWhy] = useState<string | null>(null);
  const waiters = useRef<Waiter[]>([]);

  const requestCode = useCallback(
    (message: string | null) =>
      new Promise<void>((resolve, reject) => {
        waiters.current.push({ resolve, reject });
        setWhy(message);
        setOpen(true);
      }),
    [],
  );

  const finish = (ok: boolean) => {
    const list = waiters.current;
    waiters.current = [];
    setOpen(false);
    setCode("");
    setError(null);
    for (const w of list) {
      if (ok) w.resolve();
      else w.reject(new MfaCancelled());
    }
  };

  const submit = async () => {
    const c = code.replace(/\s/g, "");
    if (!/^\d{6}$/.test(c)) {
      setError({
        code: "invalid_input",
        message: "the code has 6 digits; type the one your authenticator app shows now",
      });
      return;
    }
    setBusy(true);
    try {
      await ask(backend, { call: "confirm", totp: c }, "done");
      finish(true);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const mfa = useMemo<Mfa>(
    () => ({
      async guard(run) {
        for (;;) {
          try {
            return await run();
          } catch (e) {
            if (!isCode(e, "mfa_required")) throw e;
            await requestCode(clickNote(e));
          }
        }
      },
    }),
    [requestCode],
  );

  return (
    <MfaContext.Provider value={mfa}>
      {children}
      <Modal
        opened={open}
        onClose={() => finish(false)}
        // Above any dialog the change was asked from (Mantine's default is 200).
        zIndex={400}
        title={
          <Group gap="xs">
            <IconShieldLock size={20} aria-hidden />
            <Text fw={600}>Confirm it is you</Text>
          </Group>
        }
        centered
      >
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <Stack>
            {why ? (
              <Text size="sm" data-testid="mfa-why">
                {why}.
              </Text>
            ) : (
              <Text size="sm">
                This change needs a fresh code from your authenticator app. After you confirm, Warden will not ask again
                for 5 minutes.
              </Text>
            )}
            <TextInput
              label="6-digit code"
              data-testid="mfa-code"
              inputMode="numeric"
              autoComplete="one-time-code"
              maxLength={7}
              value={code}
              onChange={(e) => setCode(e.currentTarget.value)}
              data-autofocus
            />
            {error ? <ErrorAlert error={error} /> : null}
            <Group justify="flex-end">
              <Button variant="default" onClick={() => finish(false)}>
                Cancel
              </Button>
              <Button type="submit" loading={busy} data-testid="mfa-submit">
                Confirm
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </MfaContext.Provider>
  );
}
