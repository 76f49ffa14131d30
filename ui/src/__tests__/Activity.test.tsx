import { screen, waitFor, within } from "@testing-library/react";
import { NO_FILTERS, toLogFilter, activeCount } from "../activityFilter";
import { row } from "../test/fakeBackend";
import { renderApp } from "../test/render";

describe("activity filters → request filter", () => {
  it("sends nothing for blank filters", () => {
    expect(toLogFilter(NO_FILTERS, { admin: true })).toEqual({
      person: null,
      agent: null,
      server: null,
      tool: null,
      kind: null,
      decision: null,
      risk: null,
      since_us: null,
      until_us: null,
      search: null,
      before_id: null,
    });
  });

  it("trims text, keeps choices and pages by id", () => {
    const f = toLogFilter(
      {
        ...NO_FILTERS,
        tool: "  read_file ",
        search: " invoice ",
        decision: "deny",
        risk: "high",
        server: "files",
        kind: "approval.decided",
        agent: "cursor",
      },
      { admin: true, beforeId: 41 },
    );
    expect(f).toMatchObject({
      tool: "read_file",
      search: "invoice",
      decision: "deny",
      risk: "high",
      server: "files",
      kind: "approval.decided",
      agent: "cursor",
      before_id: 41,
    });
  });

  it("covers whole local days, the last one included", () => {
    const f = toLogFilter({ ...NO_FILTERS, from: "2026-03-02", to: "2026-03-04" }, { admin: false });
    expect(f.since_us).toBe(new Date(2026, 2, 2).getTime() * 1000);
    expect(f.until_us).toBe(new Date(2026, 2, 5).getTime() * 1000);
  });

  it("sends a person only for admins (members always see their own)", () => {
    expect(toLogFilter({ ...NO_FILTERS, person: "bob" }, { admin: true }).person).toBe("bob");
    expect(toLogFilter({ ...NO_FILTERS, person: "bob" }, { admin: false }).person).toBeNull();
  });

  it("counts the filters in use", () => {
    expect(activeCount(NO_FILTERS)).toBe(0);
    expect(activeCount({ ...NO_FILTERS, tool: " ", risk: "low", from: "2026-01-01" })).toBe(2);
  });
});

describe("Activity screen", () => {
  it("lists events with who, what and the decision, and opens one in detail", async () => {
    const { user } = renderApp({
      route: "#/activity",
      state: {
        activity: [
          row(7, {
            chain: '["alice","planner","claude-desktop"]',
            tool: "write_file",
            decision: "deny",
            outcome: "refused",
          }),
        ],
      },
    });
    const r = await screen.findByTestId("activity-row");
    for (const text of ["alice", "claude-desktop", "filesystem", "write_file", "Denied", "Refused"]) {
      expect(r).toHaveTextContent(text);
    }
    await user.click(r);
    const details = await screen.findByTestId("activity-details");
    expect(
      within(details).getByLabelText("Delegation chain: alice, then planner, then claude-desktop"),
    ).toBeInTheDocument();
    expect(details).toHaveTextContent('"path": "/tmp/a.txt"');
  });

  it("says who approved a call and how, in the Decision column", async () => {
    renderApp({
      route: "#/activity",
      state: {
        activity: [
          row(9, {
            kind: "tool_call.completed",
            decision: "allow",
            approver: "ana",
            detail: '{"choice":"once"}',
            outcome: "ok",
          }),
          row(8, { kind: "tool_call.requested", decision: "allow", approver: "standing approval 3" }),
        ],
      },
    });
    const [completed, standing] = await screen.findAllByTestId("activity-row");
    expect(within(completed).getByTestId("activity-approver")).toHaveTextContent("by ana, once");
    expect(within(standing).getByTestId("activity-approver")).toHaveTextContent("a standing approval");
  });

  it("asks Warden again when a filter changes", async () => {
    const { user, fake } = renderApp({ route: "#/activity" });
    await screen.findAllByTestId("activity-row");
    await user.type(screen.getByTestId("filter-tool"), "write_file");
    await waitFor(() => expect(fake.made("log").at(-1)?.filter.tool).toBe("write_file"));
    await user.type(screen.getByTestId("activity-search"), "notes");
    await waitFor(() =>
      expect(fake.made("log").at(-1)?.filter).toMatchObject({ tool: "write_file", search: "notes", before_id: null }),
    );
    expect(fake.made("activity_stats").at(-1)?.filter).toMatchObject({ tool: "write_file", search: "notes" });
  });

  it("offers a person filter to admins only", async () => {
    renderApp({ route: "#/activity" });
    expect(await screen.findByTestId("filter-person")).toBeInTheDocument();
  });

  it("loads older events from the last id shown", async () => {
    const many = Array.from({ length: 60 }, (_, i) => row(100 - i));
    const { user, fake } = renderApp({ route: "#/activity", state: { activity: many } });
    await waitFor(() => expect(screen.getAllByTestId("activity-row")).toHaveLength(50));
    await user.click(screen.getByTestId("activity-more"));
    await waitFor(() => expect(screen.getAllByTestId("activity-row")).toHaveLength(60));
    expect(fake.made("log").at(-1)?.filter.before_id).toBe(51);
    expect(screen.queryByTestId("activity-more")).not.toBeInTheDocument();
  });

  it("exports what the filters show and says where the file is", async () => {
    const { user, fake } = renderApp({ route: "#/activity" });
    await screen.findAllByTestId("activity-row");
    await user.click(screen.getByTestId("activity-export"));
    await user.click(await screen.findByTestId("activity-export-csv"));
    expect(await screen.findByTestId("activity-export-result")).toHaveTextContent(
      "/home/alice/Downloads/warden-activity.csv",
    );
    expect(fake.made("activity_export")[0]).toMatchObject({ format: "csv", filter: { before_id: null } });
  });
});
