import { render, screen } from "@testing-library/react";
import { MantineProvider } from "@mantine/core";
import { RiskBadge } from "../components/RiskBadge";

function show(risk: string, why?: string[]) {
  return render(
    <MantineProvider>
      <RiskBadge risk={risk} why={why} />
    </MantineProvider>,
  );
}

describe("RiskBadge", () => {
  it.each(["low", "high", "critical"])("says %s, exactly", (risk) => {
    show(risk);
    expect(screen.getByTestId("risk-badge").textContent?.trim()).toBe(risk);
  });

  it("explains why to sighted and screen-reader users", () => {
    show("high", ["it can delete files"]);
    const badge = screen.getByTestId("risk-badge");
    expect(badge).toHaveAccessibleDescription(/it can delete files/);
    // Reachable by keyboard, so the tooltip opens on focus too.
    expect(badge).toHaveAttribute("tabindex", "0");
  });

  it("uses a different colour for each level", () => {
    show("low");
    const low = screen.getByTestId("risk-badge").getAttribute("style") ?? "";
    render(
      <MantineProvider>
        <RiskBadge risk="critical" />
      </MantineProvider>,
    );
    const critical = screen.getAllByTestId("risk-badge")[1]!.getAttribute("style") ?? "";
    expect(low).not.toEqual(critical);
  });
});
