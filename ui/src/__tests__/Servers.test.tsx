import { screen, waitFor, within } from "@testing-library/react";
import { server, tool } from "../test/fakeBackend";
import { renderApp } from "../test/render";
import { glob, grantsFor } from "../grants";

describe("Servers screen", () => {
  it("shows each server's tools with their risk, and which roles may use them", async () => {
    renderApp({ route: "#/servers" });
    const card = await screen.findByTestId("server-filesystem");
    expect(within(card).getByTestId("server-status")).toHaveTextContent("Ready");
    const write = await within(card).findByTestId("tool-write_file");
    expect(within(write).getByTestId("risk-badge").textContent).toBe("high");
    expect(within(write).getByTestId("risk-badge")).toHaveAccessibleDescription(/it can change files/);
    const read = within(card).getByTestId("tool-read_file");
    expect(within(read).getByTestId("risk-badge").textContent).toBe("low");
    await waitFor(() => expect(within(read).getByTestId("tool-roles")).toHaveTextContent("reader"));
  });

  it("explains a server that does not work, in plain words", async () => {
    renderApp({
      route: "#/servers",
      state: { servers: [server("notes", { state: "failed", error: "mcp-notes was not found" } as never)], tools: {} },
    });
    const card = await screen.findByTestId("server-notes");
    expect(card).toHaveTextContent("Not working");
    expect(card).toHaveTextContent(/could not start or reach this server: mcp-notes was not found/);
  });

  it("lets an admin give a role a tool in place", async () => {
    const { user, fake } = renderApp({
      route: "#/servers",
      state: { tools: { filesystem: [tool("write_file", "high")] } },
    });
    const row = await screen.findByTestId("tool-write_file");
    await user.click(within(row).getByTestId("tool-role-add"));
    await user.click(await screen.findByRole("textbox", { name: "Role" }));
    await user.click(await screen.findByRole("option", { name: "reader" }));
    await user.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() =>
      expect(fake.made("grant")[0]).toEqual({
        call: "grant",
        role: "reader",
        server: "filesystem",
        pattern: "write_file",
        effect: "ask",
        explicit: false,
      }),
    );
  });

  it("shows a blocked server's command for consent", async () => {
    const { user, fake } = renderApp({
      route: "#/servers",
      state: { servers: [server("shell", { state: "blocked", reason: "not approved" } as never)], tools: {} },
    });
    fake.handle("server_consent", () => ({
      kind: "consent",
      value: { server: "shell", command_line: "bash -c serve", hash: "h1", approved: false, approved_by: null },
    }));
    await user.click(await screen.findByTestId("consent-show"));
    expect(await screen.findByTestId("consent-command")).toHaveTextContent("bash -c serve");
    await user.type(screen.getByTestId("consent-code"), "123456");
    fake.handle("server_consent", () => ({ kind: "done" }));
    await user.click(screen.getByTestId("consent-approve"));
    await waitFor(() =>
      expect(fake.made("server_consent")).toContainEqual({
        call: "server_consent",
        name: "shell",
        hash: "h1",
        totp: "123456",
      }),
    );
  });
});

describe("grant matching", () => {
  it("matches tool patterns like the policy does", () => {
    expect(glob("read_*", "read_file")).toBe(true);
    expect(glob("read_?ile", "read_file")).toBe(true);
    expect(glob("read_*", "write_file")).toBe(false);
    const roles = [
      { name: "a", description: "", grants: [{ server: "*", pattern: "*", effect: "ask", explicit: false }] },
      {
        name: "b",
        description: "",
        grants: [{ server: "fs", pattern: "write_file", effect: "allow", explicit: false }],
      },
      { name: "c", description: "", grants: [{ server: "other", pattern: "*", effect: "allow", explicit: false }] },
    ];
    expect(grantsFor(roles, "fs", "write_file").map((g) => [g.role, g.exact])).toEqual([
      ["a", false],
      ["b", true],
    ]);
  });
});
