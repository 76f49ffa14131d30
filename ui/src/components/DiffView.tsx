import { Box, Code, ScrollArea, VisuallyHidden } from "@mantine/core";

/** A line diff: removed lines red, added lines green, the rest plain. */
export function DiffView({ diff }: { diff: string }) {
  const lines = diff.split("\n");
  return (
    <ScrollArea.Autosize mah={360} type="auto">
      <Code block p={0} data-testid="tool-diff">
        {lines.map((line, i) => {
          const added = line.startsWith("+");
          const removed = line.startsWith("-");
          return (
            <Box
              key={i}
              px="sm"
              bg={added ? "green.0" : removed ? "red.0" : undefined}
              c={added ? "green.9" : removed ? "red.9" : undefined}
              style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}
              data-diff={added ? "added" : removed ? "removed" : "same"}
            >
              {added ? <VisuallyHidden>Added: </VisuallyHidden> : null}
              {removed ? <VisuallyHidden>Removed: </VisuallyHidden> : null}
              {line || " "}
            </Box>
          );
        })}
      </Code>
    </ScrollArea.Autosize>
  );
}
