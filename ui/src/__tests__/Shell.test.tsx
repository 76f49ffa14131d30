import { screen, waitFor, within } from "@testing-library/react";
import { EVENTS } from "../backend";
import { describeRow } from "../activityWords";
import { approval, defaultState, row, user as person } from "../test/fakeBackend";
import { renderApp, shell } from "../test/render";

const member = person("bob", "member", 2);
const memberStatus = {
  initialized: true,
  user: member,
  sso: false,
  endpoint: "http://127.0.0.1:7420/mcp",
  paused: false,
  version: "0.1.0",
  data_dir: null,
  held_settings: [],
};

describe("app shell", () => {
  it("shows admins every section, with a count of waiting approvals", async () => {
    renderApp({ state: { pending: [approval("a1"), approval("a2")] } });
    await shell();
    for (const id of [
      "home",
      "servers",
      "connect-server",
      "approvals",
      "activity",
      "connect-app",
      "people",
      "settings",
    ]) {
      expect(screen.getByTestId(`nav-${id}`)).toBeInTheDocument();
    }
    expect(await screen.findByTestId("nav-approvals-count")).toHaveTextContent("2");
  });

  it("hides admin sections from members", async () => {
    renderApp({ state: { status: memberStatus } });
    await shell();
    expect(screen.queryByTestId("nav-people")).not.toBeInTheDocument();
    expect(screen.queryByTestId("pause-toggle")).not.toBeInTheDocument();
  });

  it("gives members their own account in Settings, and nothing of the admins'", async () => {
    const { user } = renderApp({ state: { status: memberStatus } });
    await shell();
    await user.click(screen.getByTestId("nav-settings"));
    expect(await screen.findByTestId("your-account")).toBeInTheDocument();
    expect(screen.queryByText(/single sign-on/i)).not.toBeInTheDocument();
  });

  it("moves between screens with the navigation links", async () => {
    const { user } = renderApp();
    await shell();
    await user.click(screen.getByTestId("nav-servers"));
    expect(await screen.findByRole("heading", { name: "Servers" })).toBeInTheDocument();
    expect(window.location.hash).toBe("#/servers");
  });

  it("refreshes the approval count when the backend says approvals changed", async () => {
    const { fake } = renderApp();
    await shell();
    expect(screen.queryByTestId("nav-approvals-count")).not.toBeInTheDocument();
    fake.state.pending = [approval("a9")];
    fake.emit(EVENTS.approvals, { version: 2, pending: 1 });
    expect(await screen.findByTestId("nav-approvals-count")).toHaveTextContent("1");
  });

  it("goes where the tray menu asks", async () => {
    const { fake } = renderApp();
    await shell();
    fake.emit(EVENTS.navigate, "/approvals");
    expect(await screen.findByRole("heading", { name: "Approvals" })).toBeInTheDocument();
  });

  it("returns to sign-in when the session ends", async () => {
    const { fake } = renderApp();
    await shell();
    fake.state.status = { ...fake.state.status, user: null };
    fake.emit(EVENTS.session, null);
    expect(await screen.findByTestId("signin-name")).toBeInTheDocument();
  });

  it("signs out from the header menu", async () => {
    const { user, fake } = renderApp();
    await shell();
    await user.click(screen.getByTestId("user-menu"));
    await user.click(await screen.findByTestId("signout"));
    expect(await screen.findByTestId("signin-name")).toBeInTheDocument();
    expect(fake.made("logout")).toHaveLength(1);
  });

  it("pauses every agent from the header and shows it on Home", async () => {
    const { user, fake } = renderApp();
    await shell();
    await user.click(screen.getByTestId("pause-toggle"));
    await waitFor(() => expect(fake.made("agents_pause")).toEqual([{ call: "agents_pause", paused: true }]));
    const banner = await screen.findByTestId("paused-banner");
    await user.click(within(banner).getByRole("button", { name: "Resume agents" }));
    await waitFor(() => expect(fake.made("agents_pause").at(-1)).toEqual({ call: "agents_pause", paused: false }));
    await waitFor(() => expect(screen.queryByTestId("paused-banner")).not.toBeInTheDocument());
  });
});

describe("settings the configuration file loosens", () => {
  const held = [
    { setting: "approvals.timeout_secs", wanted: "calls that wait up to 3600 s for a person", kept: "120 s" },
    { setting: "activity.max_rows", wanted: "only the newest 1 row of activity", kept: "no limit" },
  ];

  it("shows admins what waits, and applies it only with a right code", async () => {
    const { fake, user } = renderApp({ state: { status: { ...defaultState().status, held_settings: held } } });
    await shell();
    const card = await screen.findByTestId("held-settings");
    expect(card).toHaveTextContent("The file asks for calls that wait up to 3600 s for a person. In force now: 120 s.");
    expect(card).toHaveTextContent("If you did not make this change");
    await user.click(within(card).getByTestId("held-review"));
    await user.type(await within(card).findByTestId("held-code"), "000000");
    await user.click(within(card).getByTestId("held-approve"));
    expect(await within(card).findByText(/code is not right/i)).toBeInTheDocument();
    expect(fake.state.status.held_settings).toHaveLength(2);
    await user.clear(within(card).getByTestId("held-code"));
    await user.type(within(card).getByTestId("held-code"), "123456");
    await user.click(within(card).getByTestId("held-approve"));
    await waitFor(() => expect(screen.queryByTestId("held-settings")).not.toBeInTheDocument());
    expect(fake.calls).toContainEqual({ call: "settings_approve", hash: "settings-1", totp: "123456" });
  });
});

describe("activity about the configuration file", () => {
  it("is told in words", () => {
    expect(describeRow(row(1, { kind: "config.change_held", agent: null, on_behalf_of: null }))).toBe(
      "Warden kept the approved settings: the configuration file asks for looser ones",
    );
    expect(describeRow(row(2, { kind: "config.change_approved", agent: null, on_behalf_of: "alice" }))).toBe(
      "alice approved the settings in the configuration file",
    );
    expect(describeRow(row(3, { kind: "auth.first_code_failed", agent: null, on_behalf_of: "alice" }))).toBe(
      "alice's first code from a newly set up authenticator app did not work",
    );
  });
});
