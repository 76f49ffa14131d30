import { screen, waitFor, within } from "@testing-library/react";
import { EVENTS } from "../backend";
import { approval, user as person } from "../test/fakeBackend";
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
    expect(screen.queryByTestId("nav-settings")).not.toBeInTheDocument();
    expect(screen.queryByTestId("pause-toggle")).not.toBeInTheDocument();
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
