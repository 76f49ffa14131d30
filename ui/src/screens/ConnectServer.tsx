// Connect a server: choose local or remote, fill in the details, watch it
// connect (signing in for remote servers), and see the tools it offers.
import { useState } from "react";
import {
  Alert,
  Button,
  Group,
  Loader,
  SimpleGrid,
  Stack,
  Stepper,
  Text,
  Textarea,
  TextInput,
  Title,
} from "@mantine/core";
import { IconCloud, IconDeviceDesktop, IconFolder, IconTerminal2 } from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import { keys, useAsk, useCall } from "../api";
import { ChoiceCard } from "../components/ChoiceCard";
import { ErrorAlert } from "../components/ErrorAlert";
import { useMfa } from "../components/MfaProvider";
import { toFailure } from "../backend";
import { START, buildSpec, choosePreset, nameFromUrl, slug, stepProblem, type WizardState } from "../wizard";
import { ConnectProgress, type Progress } from "./connectServer/ConnectProgress";
import { WizardResult } from "./connectServer/WizardResult";

export function ConnectServer({ admin }: { admin: boolean }) {
  const call = useAsk();
  const mfa = useMfa();
  const client = useQueryClient();
  const [step, setStep] = useState(0);
  const [s, setS] = useState<WizardState>(START);
  const [problem, setProblem] = useState<string | null>(null);
  const [progress, setProgress] = useState<Progress>({ phase: "idle" });
  const presets = useCall(keys.presets, { call: "server_presets" }, "presets", { enabled: admin });
  const list = presets.data ?? [];
  const set = (patch: Partial<WizardState>) => setS((old) => ({ ...old, ...patch }));

  if (!admin) {
    return (
      <Stack>
        <Title order={2}>Connect a server</Title>
        <Alert color="blue" title="Only an admin can connect servers">
          Servers run with access to your computer or your accounts, so an admin adds them. Ask your Warden admin to
          connect the server you need.
        </Alert>
      </Stack>
    );
  }

  const next = () => {
    const p = stepProblem(step, s, list);
    setProblem(p);
    if (p) return;
    if (step === 1) {
      setStep(2);
      void connect(false);
    } else {
      setStep(step + 1);
    }
  };

  const connect = async (added: boolean) => {
    const name = s.name;
    try {
      if (!added) {
        setProgress({ phase: "adding" });
        await mfa.guard(() => call({ call: "server_add", name, spec: buildSpec(s, list) }, "done"));
        void client.invalidateQueries({ queryKey: keys.servers });
      }
      if (s.kind === "local") {
        setProgress({ phase: "done", signIn: "none" });
        setStep(3);
        return;
      }
      setProgress({ phase: "signin-start" });
      let started;
      try {
        started = await call(
          { call: "server_login_start", name, client_id: null, client_secret: null, scopes: null },
          "login_started",
        );
      } catch (e) {
        if (/does not use OAuth/i.test(toFailure(e).message)) {
          setProgress({ phase: "done", signIn: "not-needed" });
          setStep(3);
          return;
        }
        throw e;
      }
      setProgress({ phase: "signin-wait", url: started.url, issuer: started.issuer });
      await call({ call: "server_login_finish", flow: started.flow }, "signed_in_to");
      setProgress({ phase: "probe" });
      const probe = await call({ call: "server_probe", name }, "probe");
      void client.invalidateQueries({ queryKey: keys.servers });
      setProgress({ phase: "done", signIn: "signed-in", verdict: probe.verdict });
      setStep(3);
    } catch (e) {
      setProgress((p) => ({ phase: "error", error: e, added: added || p.phase !== "adding", at: p.phase }));
    }
  };

  const selectedPreset = list.find((p) => p.id === s.preset);

  return (
    <Stack gap="lg" maw={860}>
      <Stack gap={2}>
        <Title order={2}>Connect a server</Title>
        <Text c="dimmed" size="sm">
          A server gives your agents tools. Warden starts it (or signs in to it), checks every tool and rates its risk.
        </Text>
      </Stack>
      <Stepper active={step} size="sm" allowNextStepsSelect={false}>
        <Stepper.Step label="Where" />
        <Stepper.Step label="Details" />
        <Stepper.Step label="Connect" />
        <Stepper.Step label="Done" />
      </Stepper>

      {step === 0 ? (
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <ChoiceCard
            selected={s.kind === "local"}
            onClick={() => set({ kind: "local" })}
            icon={<IconDeviceDesktop size={20} />}
            title="On this computer"
            text="A program Warden starts here, like access to a folder of your files."
            testId="wizard-local"
          />
          <ChoiceCard
            selected={s.kind === "remote"}
            onClick={() => set({ kind: "remote" })}
            icon={<IconCloud size={20} />}
            title="On the internet"
            text="A service at a web address, like your company's tools. You sign in to it once."
            testId="wizard-remote"
          />
        </SimpleGrid>
      ) : null}

      {step === 1 && s.kind === "local" ? (
        <Stack>
          {presets.isPending ? (
            <Loader size="sm" />
          ) : presets.isError ? (
            <ErrorAlert error={presets.error} onRetry={() => void presets.refetch()} />
          ) : null}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            {list.map((p) => (
              <ChoiceCard
                key={p.id}
                selected={s.preset === p.id}
                onClick={() => setS((o) => choosePreset(o, p))}
                icon={p.needs_folder ? <IconFolder size={20} /> : <IconDeviceDesktop size={20} />}
                title={p.title}
                text={p.description}
                testId={`preset-${p.id}`}
              />
            ))}
            <ChoiceCard
              selected={s.preset === "custom"}
              onClick={() => setS((o) => choosePreset(o, "custom"))}
              icon={<IconTerminal2 size={20} />}
              title="Another program"
              text="Type the command that starts an MCP server you installed yourself."
              testId="preset-custom"
            />
          </SimpleGrid>
          {s.preset === "custom" ? (
            <>
              <TextInput
                label="Command"
                description="The program to run, for example npx or a full path."
                value={s.command}
                onChange={(e) => set({ command: e.currentTarget.value })}
                data-testid="wizard-command"
              />
              <Textarea
                label="Arguments"
                description="One per line."
                autosize
                minRows={2}
                value={s.args}
                onChange={(e) => set({ args: e.currentTarget.value })}
                data-testid="wizard-args"
              />
            </>
          ) : null}
          {selectedPreset?.needs_folder ? (
            <TextInput
              label="Folder"
              description="The only folder this server may read and change, for example /home/you/Documents."
              leftSection={<IconFolder size={16} />}
              value={s.folder}
              onChange={(e) => set({ folder: e.currentTarget.value })}
              data-testid="wizard-folder"
            />
          ) : null}
          {s.preset ? <NameInput s={s} set={set} /> : null}
        </Stack>
      ) : null}

      {step === 1 && s.kind === "remote" ? (
        <Stack>
          <TextInput
            label="Server address"
            placeholder="https://mcp.example.com/mcp"
            description="The MCP address the service gave you. It must start with https://"
            value={s.url}
            onChange={(e) => {
              const url = e.currentTarget.value;
              setS((o) => ({ ...o, url, name: o.nameEdited ? o.name : nameFromUrl(url) }));
            }}
            data-testid="wizard-url"
          />
          <NameInput s={s} set={set} />
        </Stack>
      ) : null}

      {step === 2 ? (
        <ConnectProgress
          kind={s.kind ?? "local"}
          progress={progress}
          onRetry={() => progress.phase === "error" && void connect(progress.added)}
          onBack={() => {
            setProgress({ phase: "idle" });
            setStep(1);
          }}
        />
      ) : null}

      {step === 3 && progress.phase === "done" ? <WizardResult name={s.name} progress={progress} /> : null}

      {step < 2 ? (
        <Stack gap="xs">
          {problem ? (
            <Text c="red.8" size="sm" role="alert" data-testid="wizard-problem">
              {problem}
            </Text>
          ) : null}
          <Group justify="space-between">
            <Button variant="default" disabled={step === 0} onClick={() => setStep(step - 1)}>
              Back
            </Button>
            <Button onClick={next} data-testid="wizard-next">
              {step === 1 ? "Add the server" : "Next"}
            </Button>
          </Group>
        </Stack>
      ) : null}
    </Stack>
  );
}

function NameInput({ s, set }: { s: WizardState; set: (p: Partial<WizardState>) => void }) {
  return (
    <TextInput
      label="Name"
      description="How Warden and your agents will call this server: lowercase letters, digits and hyphens."
      value={s.name}
      onChange={(e) => set({ name: e.currentTarget.value, nameEdited: true })}
      onBlur={() => set({ name: slug(s.name) || s.name })}
      data-testid="wizard-name"
    />
  );
}
