// One line that approves something with a fresh authenticator code: the
// code field, the approving button (enabled once six digits are typed) and
// "Not now". Used where an admin approves what an edit of Warden's files
// asks for (a server's command or address, looser settings).
import { useState } from "react";
import { Button, Group, TextInput } from "@mantine/core";

export function CodeApproval({
  label,
  busy,
  ready = true,
  testId,
  onApprove,
  onCancel,
}: {
  /** The approving button's words. */
  label: string;
  busy: boolean;
  /** Whether what is approved has loaded. */
  ready?: boolean;
  /** `${testId}-code` and `${testId}-approve`. */
  testId: string;
  onApprove: (code: string) => void;
  onCancel: () => void;
}) {
  const [code, setCode] = useState("");
  const digits = code.replace(/\s/g, "");
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (ready) onApprove(digits);
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
          data-testid={`${testId}-code`}
        />
        <Button
          type="submit"
          color="orange"
          loading={busy}
          disabled={!ready || !/^\d{6}$/.test(digits)}
          data-testid={`${testId}-approve`}
        >
          {label}
        </Button>
        <Button variant="default" onClick={onCancel}>
          Not now
        </Button>
      </Group>
    </form>
  );
}
