import { Badge, Group, Tooltip, VisuallyHidden } from "@mantine/core";
import { useId } from "@mantine/hooks";
import type { RiskLevel } from "../types";

const COLOR: Record<RiskLevel, string> = { low: "teal", high: "orange", critical: "red" };

const MEANING: Record<RiskLevel, string> = {
  low: "Low risk: only reads.",
  high: "High risk: can change, delete, send or reach the internet.",
  critical: "Critical: every call needs your approval with a fresh code.",
};

/** A tool's risk, with why it has it (tooltip, also read by screen readers). */
export function RiskBadge({ risk, why = [] }: { risk: string; why?: string[] }) {
  const id = useId();
  const level = (["low", "high", "critical"].includes(risk) ? risk : "high") as RiskLevel;
  const explanation = [MEANING[level], ...why].join(" ");
  return (
    <Group gap={0} wrap="nowrap" display="inline-flex" style={{ flexShrink: 0 }}>
      <Tooltip label={explanation} multiline w={300} events={{ hover: true, focus: true, touch: true }}>
        <Badge
          data-testid="risk-badge"
          color={COLOR[level]}
          variant={level === "low" ? "light" : "filled"}
          tabIndex={0}
          aria-describedby={id}
          // Never squeezed into "HI…" by a long explanation beside it.
          miw="fit-content"
          style={{ cursor: "help", flexShrink: 0, overflow: "visible" }}
        >
          {level}
        </Badge>
      </Tooltip>
      <VisuallyHidden id={id}>{explanation}</VisuallyHidden>
    </Group>
  );
}
