// One pending request and the person's decision. Used by the prompt window
// and the Approvals screen. No approve button is ever a default or submit
// button, and Enter in the inputs does nothing: a stray keystroke must
// never approve a call.
import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { Alert, Button, Divider, Group, Stack, Text, TextInput, Title } from "@mantine/core";
import { IconCheck, IconShieldLock, IconX } from "@tabler/icons-react";
import { ask } from "../backend";
import { useBackend } from "../api";
import { friendly, isCode } from "../errors";
import type { ApprovalRequest } from "../types";
import { Countdown } from "./Countdown";
import { DelegationChain } from "./DelegationChain";
import { ErrorAlert } from "./ErrorAlert";
import { SentArguments } from "./SentArguments";
import { RiskBadge } from "./RiskBadge";

export type Choice = "once" | "session" | "always" | "deny";

/** How long a request is on screen before it can be approved. */
export const ARM_MS = 800;

const swallowEnter = (e: KeyboardEvent) => {
  if (e.key === "Enter") e.preventDefault();
};

export function ApprovalCard({
  request,
  onDecided,
  onGone,
  autoFocus = false,
}: {
  request: ApprovalRequest;
  onDecided: (choice: Choice) => void;
  /** The request was answered elsewhere or timed out. */
  onGone?: () => void;
  autoFocus?: boolean;
}) {
  const backend = useBackend();
  const critical = request.risk === "critical";
  const delegated = (request.chain?.length ?? 0) > 0;
  const onceOnly = critical || delegated;
  // A stateless client keeps no session: "this session" would cover every
  // later call of the agent, so it is not offered.
  const noSession = !request.session_choice;
  const [reason, setReason] = useState("");
  const [code, setCode] = useState("");
  const [needsCode, setNeedsCode] = useState(critical);
  const [codeNote, setCodeNote] = useState<string | null>(null);
  const [busy, setBusy] = useState<Choice | null>(null);
  const [error, setError] = useState<unknown>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    // Focus the heading, never a button: a keystroke meant for another
    // window must not answer.
    if (autoFocus) heading.current?.focus();
  }, [autoFocus, request.id]);

  // Approving is possible only after the request has been on screen for a
  // moment: a click meant for another window, or the second half of a
  // double-click when the next request takes this one's place, must not
  // approve it.
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    setArmed(false);
    const t = setTimeout(() => setArmed(true), ARM_MS);
    return () => clearTimeout(t);
  }, [request.id]);

  const decide = async (choice: Choice) => {
    setError(null);
    const digits = code.replace(/\s/g, "");
    if (choice !== "deny" && needsCode && !/^\d{6}$/.test(digits)) {
      setCodeNote(
        critical
          ? "This tool is critical: type the 6-digit code from your authenticator app to approve."
          : "Type the 6-digit code from your authenticator app, then choose again.",
      );
      return;
    }
    setBusy(choice);
    try {
      await ask(
        backend,
        {
          call: "approval_decide",
          id: request.id,
          choice,
          reason: choice === "deny" && reason.trim() ? reason.trim() : null,
          totp: choice !== "deny" && needsCode ? digits : null,
        },
        "done",
      );
      onDecided(choice);
    } catch (e) {
      if (isCode(e, "mfa_required")) {
        // A click Warden could not tell was the person's says so in the
        // shell's words; otherwise the session's code is not fresh.
        const why = friendly(e).detail;
        setNeedsCode(true);
        setCodeNote(
          why.startsWith("Warden could not tell")
            ? why
            : "Approving needs a fresh code: type the 6-digit code from your authenticator app, then choose again.",
        );
      } else if (isCode(e, "not_found") && onGone) {
        onGone();
      } else {
        setError(e);
      }
      setCode("");
    } finally {
      setBusy(null);
    }
  };

  const approveDisabled = busy !== null || !armed;
  return (
    <Stack gap="sm">
      <Stack gap={2}>
        <Title order={3} size="h4" ref={heading} tabIndex={-1} style={{ outline: "none" }}>
          <Text span inherit data-testid="prompt-agent">
            {request.agent}
          </Text>{" "}
          wants to use{" "}
          <Text span inherit data-testid="prompt-tool">
            {request.tool}
          </Text>
        </Title>
        <Text size="sm" c="dimmed">
          on the server <b>{request.server}</b>
          {request.person ? (
            <>
              , acting for <b>{request.person}</b>
            </>
          ) : null}
        </Text>
      </Stack>

      {delegated && request.chain ? (
        <Stack gap={2}>
          <Text size="xs" c="dimmed">
            Passed along by
          </Text>
          <DelegationChain chain={request.chain} />
        </Stack>
      ) : null}

      <Group gap="xs" wrap="nowrap" align="flex-start" data-testid="prompt-risk">
        <RiskBadge risk={request.risk} why={request.why} />
        <Text size="sm">{request.why.length ? request.why.join(" ") : "No reason given for this risk."}</Text>
      </Group>

      <Stack gap={4}>
        <Text size="sm" fw={500}>
          What it will send
        </Text>
        <SentArguments sent={request.sent} logged={request.arguments} testId="prompt-args" />
      </Stack>

      <Countdown requestedUs={request.requested_at_us} expiresUs={request.expires_at_us} testId="prompt-countdown" />

      <Divider />

      {needsCode ? (
        <TextInput
          label="Code from your authenticator app"
          description={critical ? "Critical tools need a fresh code for every approval." : undefined}
          leftSection={<IconShieldLock size={16} aria-hidden />}
          inputMode="numeric"
          autoComplete="one-time-code"
          maxLength={7}
          value={code}
          onChange={(e) => {
            setCode(e.currentTarget.value);
            setCodeNote(null);
          }}
          onKeyDown={swallowEnter}
          data-testid="prompt-totp"
          error={codeNote}
          errorProps={{ "data-testid": "prompt-totp-note" }}
        />
      ) : null}

      <ErrorAlert error={error} />

      <Stack gap="xs">
        <Button
          type="button"
          color="green"
          leftSection={<IconCheck size={16} />}
          onClick={() => void decide("once")}
          loading={busy === "once"}
          disabled={approveDisabled && busy !== "once"}
          data-testid="prompt-approve-once"
        >
          Allow once
        </Button>
        <Button
          type="button"
          variant="light"
          color="green"
          onClick={() => void decide("session")}
          loading={busy === "session"}
          disabled={onceOnly || noSession || (approveDisabled && busy !== "session")}
          data-testid="prompt-approve-session"
        >
          Allow for this session
        </Button>
        <Button
          type="button"
          variant="light"
          color="green"
          onClick={() => void decide("always")}
          loading={busy === "always"}
          disabled={onceOnly || (approveDisabled && busy !== "always")}
          data-testid="prompt-approve-always"
        >
          Always allow these exact arguments
        </Button>
        {onceOnly ? (
          <Text size="xs" c="dimmed">
            {critical
              ? "Critical tools are approved one call at a time."
              : "Calls passed along through a delegation are approved one at a time."}
          </Text>
        ) : noSession ? (
          <Text size="xs" c="dimmed" data-testid="prompt-no-session">
            This agent&apos;s app keeps no session with Warden, so you can allow one call, or always allow these exact
            arguments.
          </Text>
        ) : null}
      </Stack>

      <Group align="flex-end" gap="xs" wrap="nowrap">
        <TextInput
          style={{ flex: 1 }}
          label="Reason for denying (optional)"
          placeholder="For example: not now, or wrong folder"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          onKeyDown={swallowEnter}
          data-testid="prompt-deny-reason"
        />
        <Button
          type="button"
          color="red"
          variant="filled"
          leftSection={<IconX size={16} />}
          onClick={() => void decide("deny")}
          loading={busy === "deny"}
          disabled={busy !== null && busy !== "deny"}
          data-testid="prompt-deny"
        >
          Deny
        </Button>
      </Group>
    </Stack>
  );
}

/** Shown when the request on screen was answered elsewhere or timed out. */
export function GoneNote({ onClose }: { onClose?: () => void }) {
  return (
    <Alert color="gray" variant="light" withCloseButton={!!onClose} onClose={onClose} data-testid="prompt-gone">
      The request you were looking at was answered elsewhere or timed out.
    </Alert>
  );
}
