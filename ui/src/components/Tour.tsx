import { Button, Group, List, Modal, Stack, Stepper, Text } from "@mantine/core";
import { IconApps, IconChecklist, IconPlugConnected, IconShieldCheck } from "@tabler/icons-react";
import { useState, type ReactNode } from "react";

const STEPS: { title: string; icon: ReactNode; body: ReactNode }[] = [
  {
    title: "Welcome",
    icon: <IconShieldCheck size={18} />,
    body: (
      <Text>
        Warden stands between your AI apps and the tools they use. Every call goes through Warden, so you can see it,
        allow it or stop it.
      </Text>
    ),
  },
  {
    title: "Servers",
    icon: <IconPlugConnected size={18} />,
    body: (
      <Text>
        Tools come from <b>servers</b>: a folder on this computer, your calendar, a company service. Add one under{" "}
        <b>Connect a server</b>; Warden checks each of its tools and rates how risky it is.
      </Text>
    ),
  },
  {
    title: "Approvals",
    icon: <IconChecklist size={18} />,
    body: (
      <Stack gap="xs">
        <Text>When an agent wants to do something risky, a small window asks you first:</Text>
        <List size="sm" spacing={4}>
          <List.Item>Allow once, for this session, or always for the exact same request.</List.Item>
          <List.Item>Deny, with a reason if you like.</List.Item>
          <List.Item>If you do not answer in time, Warden says no for you.</List.Item>
        </List>
      </Stack>
    ),
  },
  {
    title: "Your AI app",
    icon: <IconApps size={18} />,
    body: (
      <Text>
        Finally, point your AI app at Warden under <b>Connect your AI app</b>. Warden writes the settings for Claude
        Desktop, Cursor or VS Code and keeps a backup of the old ones.
      </Text>
    ),
  },
];

/** A short guided tour after the first sign-in. */
export function Tour({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const [step, setStep] = useState(0);
  const last = step === STEPS.length - 1;
  const close = () => {
    setStep(0);
    onClose();
  };
  return (
    <Modal opened={opened} onClose={close} title="A quick tour" size="lg" centered>
      <Stack gap="lg">
        <Stepper active={step} onStepClick={setStep} size="sm" allowNextStepsSelect={false}>
          {STEPS.map((s) => (
            <Stepper.Step key={s.title} label={s.title} icon={s.icon} />
          ))}
        </Stepper>
        <div aria-live="polite" data-testid="tour-step">
          {STEPS[step]!.body}
        </div>
        <Group justify="space-between">
          <Button variant="subtle" color="gray" onClick={close} data-testid="tour-skip">
            Skip the tour
          </Button>
          <Group gap="xs">
            {step > 0 ? (
              <Button variant="default" onClick={() => setStep(step - 1)}>
                Back
              </Button>
            ) : null}
            {last ? (
              <Button onClick={close} data-testid="tour-done">
                Start using Warden
              </Button>
            ) : (
              <Button onClick={() => setStep(step + 1)} data-testid="tour-next">
                Next
              </Button>
            )}
          </Group>
        </Group>
      </Stack>
    </Modal>
  );
}
