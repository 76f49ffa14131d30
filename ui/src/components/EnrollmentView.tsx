import { Button, Checkbox, Code, CopyButton, Group, Image, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { IconCheck, IconCopy, IconDownload } from "@tabler/icons-react";
import type { Enrollment } from "../types";
import { CopyField } from "./CopyField";

/** An SVG string as an image source, never as markup in the page. */
export function svgDataUrl(svg: string): string {
  const bytes = new TextEncoder().encode(svg);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `data:image/svg+xml;base64,${btoa(bin)}`;
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * What a new person needs once: the authenticator secret (QR and text) and
 * the recovery codes, with a checkbox that they saved them.
 */
export function EnrollmentView({
  enrollment,
  saved,
  onSaved,
}: {
  enrollment: Enrollment;
  saved: boolean;
  onSaved: (saved: boolean) => void;
}) {
  const codes = enrollment.recovery_codes.join("\n");
  const who = enrollment.user.name;
  return (
    <Stack gap="lg">
      <Stack gap="xs">
        <Title order={4}>1. Add Warden to your authenticator app</Title>
        <Text size="sm" c="dimmed">
          Open an authenticator app on your phone (for example Google Authenticator, Microsoft Authenticator or
          1Password), add an account, and scan this code. If you cannot scan, type the key below instead.
        </Text>
        <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="md">
          {enrollment.qr_svg ? (
            <Image
              src={svgDataUrl(enrollment.qr_svg)}
              alt={`QR code to add ${who}'s Warden account to an authenticator app`}
              w={200}
              h={200}
              fit="contain"
              bg="white"
              radius="sm"
            />
          ) : (
            <Text size="sm">No QR code could be made here; type the key instead.</Text>
          )}
          <Stack gap={4}>
            <Text size="sm" fw={500}>
              Key to type
            </Text>
            <CopyField value={enrollment.totp_secret} label="the key" testId="enroll-secret" />
          </Stack>
        </SimpleGrid>
      </Stack>

      <Stack gap="xs">
        <Title order={4}>2. Save your recovery codes</Title>
        <Text size="sm" c="dimmed">
          If you lose your phone, each of these codes lets you sign in once. Keep them somewhere safe, like a password
          manager. They are shown only now.
        </Text>
        <Code block data-testid="recovery-codes" style={{ userSelect: "all" }}>
          {codes}
        </Code>
        <Group gap="xs">
          <CopyButton value={codes}>
            {({ copied, copy }) => (
              <Button
                variant="light"
                leftSection={copied ? <IconCheck size={16} /> : <IconCopy size={16} />}
                onClick={copy}
              >
                {copied ? "Copied" : "Copy codes"}
              </Button>
            )}
          </CopyButton>
          <Button
            variant="light"
            leftSection={<IconDownload size={16} />}
            onClick={() => download(`warden-recovery-codes-${who}.txt`, `${codes}\n`)}
          >
            Download as a file
          </Button>
        </Group>
        <Checkbox
          data-testid="enroll-saved"
          label="I saved my recovery codes somewhere safe"
          checked={saved}
          onChange={(e) => onSaved(e.currentTarget.checked)}
        />
      </Stack>
    </Stack>
  );
}
