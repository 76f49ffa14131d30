import { screen, waitFor, within } from "@testing-library/react";
import { fail, server, tool } from "../test/fakeBackend";
import type { ServerAuth } from "../bindings/ServerAuth";

const remote = server("notes", { transport: "http", target: "https://notes.example.com/mcp" });

function signedIn(extra: Partial<ServerAuth> = {}): ServerAuth {
  return {
    server: "notes",
    issuer: "https://id.example.com",
    resource: "https://notes.example.com/mcp",
    client_id: "c1",
    client_kind: "dynamic",
    redirect_uri: null,
    scopes: "notes:read",
    expires_at_s: Math.floor(Date.now() / 1000) + 3600,
    token_endpoint: "https://id.example.com/token",
    revocation_endpoint: null,
    signed_in_at_us: Date.now() * 1000,
    signed_in_by: "alice",
    last_refresh_at_us: null,
    last_error: null,
    ...extra,
  };
}
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

  it("shows a remote server's sign-in, and signs in again when it ended", async () => {
    const { user, fake } = renderApp({
      route: "#/servers",
      state: { servers: [remote], tools: { notes: [tool("search")] } },
    });
    let auth = signedIn({ last_error: "the refresh token was refused" });
    fake.handle("server_auth_list", () => ({ kind: "server_auths", value: [auth] }));
    let finish: (() => void) | null = null;
    fake.handle("server_login_start", () => ({
      kind: "login_started",
      value: {
        flow: "f1",
        url: "https://id.example.com/authorize?x=1",
        issuer: "https://id.example.com",
        registration: "dynamic",
        scopes: "notes:read",
      },
    }));
    fake.handle(
      "server_login_finish",
      () =>
        new Promise((done) => {
          finish = () => {
            auth = signedIn();
            done({ kind: "signed_in_to", value: auth });
          };
        }),
    );
    const card = await screen.findByTestId("server-notes");
    expect(await within(card).findByTestId("server-signin-problem")).toHaveTextContent(
      /could not renew.*Sign in again/,
    );
    expect(within(card).getByTestId("server-signin")).toHaveTextContent("https://id.example.com");
    await user.click(within(card).getByTestId("server-signin-again"));
    // While the person signs in in the browser, the address is there to copy.
    expect(await within(card).findByTestId("server-signin-waiting")).toHaveTextContent("id.example.com");
    expect(fake.made("server_login_start")[0]).toMatchObject({ name: "notes" });
    finish!();
    await waitFor(() => expect(within(card).queryByTestId("server-signin-problem")).toBeNull());
    expect(fake.made("server_login_finish")).toEqual([{ call: "server_login_finish", flow: "f1" }]);

    await user.click(within(card).getByTestId("server-signout"));
    await user.click(await screen.findByTestId("server-signout-confirm"));
    await waitFor(() => expect(fake.made("server_logout")).toEqual([{ call: "server_logout", name: "notes" }]));
  });

  it("says a remote server needs a sign-in rather than to check its program", async () => {
    renderApp({
      route: "#/servers",
      state: {
        servers: [
          {
            ...remote,
            state: "failed",
            error: "the sign-in to notes ended; sign in again: warden server login notes",
          } as never,
        ],
        tools: {},
      },
    });
    const card = await screen.findByTestId("server-notes");
    expect(within(card).getByTestId("server-needs-signin")).toHaveTextContent(/not signed in.*signs in again below/);
    expect(card).not.toHaveTextContent(/program is installed/);
  });

  it("starts signing in at once when opened from the notification, and only once", async () => {
    const { fake } = renderApp({
      route: "#/servers?server=notes&signin=1",
      state: { servers: [remote], tools: { notes: [tool("search")] } },
    });
    fake.handle("server_auth_list", () => ({ kind: "server_auths", value: [signedIn({ last_error: "refused" })] }));
    fake.handle("server_login_start", () => fail("unavailable", "the server cannot be reached"));
    await waitFor(() => expect(fake.made("server_login_start")).toHaveLength(1));
    expect(await screen.findByText(/cannot be reached/)).toBeInTheDocument();
    await waitFor(() => expect(window.location.hash).not.toContain("signin"));
    expect(fake.made("server_login_start")).toHaveLength(1);
  });

  it("shows a blocked server's command for consent", async () => {
    const { user, fake } = renderApp({
      route: "#/servers",
      state: { servers: [server("shell", { state: "blocked", reason: "not approved" } as never)], tools: {} },
    });
    fake.handle("server_consent", () => ({
      kind: "consent",
      value: {
        server: "shell",
        command_line: "bash -c serve",
        hash: "h1",
        approved: false,
        approved_by: null,
        remote: false,
      },
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
