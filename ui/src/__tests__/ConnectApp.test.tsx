import { screen, waitFor } from "@testing-library/react";
import { fail, server } from "../test/fakeBackend";
import { renderApp } from "../test/render";

describe("Connect your AI app", () => {
  it("writes the app's configuration for a new agent with the chosen servers", async () => {
    const { user, fake } = renderApp({
      route: "#/connect-app",
      state: { servers: [server("filesystem"), server("github")] },
    });
    await user.click(await screen.findByTestId("app-claude_desktop"));
    expect(screen.getByTestId("app-agent-name")).toHaveValue("claude-desktop");
    expect(screen.getByTestId("app-write")).toBeDisabled();
    await user.click(await screen.findByTestId("app-server-github"));
    await user.click(screen.getByTestId("app-write"));
    const result = await screen.findByTestId("app-result");
    expect(fake.made("client_connect")[0]).toEqual({
      call: "client_connect",
      app: "claude_desktop",
      agent: "claude-desktop",
      servers: ["github"],
      write: true,
    });
    expect(result).toHaveTextContent("/home/alice/.config/Claude/claude_desktop_config.json");
    expect(result).toHaveTextContent("claude_desktop_config.json.warden-backup");
    const snippet = screen.getByTestId("app-snippet");
    expect(snippet.tagName).toBe("PRE");
    expect(snippet).toHaveTextContent('"connect"');
  });

  it("only shows the snippet when asked to, and keeps a name the person typed", async () => {
    const { user, fake } = renderApp({ route: "#/connect-app" });
    await user.click(await screen.findByTestId("app-cursor"));
    expect(screen.getByTestId("app-agent-name")).toHaveValue("cursor");
    await user.clear(screen.getByTestId("app-agent-name"));
    await user.type(screen.getByTestId("app-agent-name"), "work-cursor");
    await user.click(screen.getByTestId("app-vscode"));
    expect(screen.getByTestId("app-agent-name")).toHaveValue("work-cursor");
    await user.click(await screen.findByTestId("app-server-filesystem"));
    await user.click(screen.getByTestId("app-snippet-only"));
    await screen.findByTestId("app-result");
    expect(fake.made("client_connect")[0]).toMatchObject({ app: "vscode", agent: "work-cursor", write: false });
    expect(screen.getByTestId("app-result")).toHaveTextContent(/Paste this/);
  });

  it("says what went wrong when Warden cannot write the file", async () => {
    const { user, fake } = renderApp({ route: "#/connect-app" });
    fake.handle("client_connect", () => {
      throw { code: "unavailable", message: "could not write /home/alice/.cursor/mcp.json: permission denied" };
    });
    await user.click(await screen.findByTestId("app-cursor"));
    await user.click(await screen.findByTestId("app-server-filesystem"));
    await user.click(screen.getByTestId("app-write"));
    await waitFor(() =>
      expect(screen.getByRole("alert")).toHaveTextContent(
        "Could not write /home/alice/.cursor/mcp.json: permission denied.",
      ),
    );
    expect(screen.getByRole("alert")).toHaveTextContent("Wait a moment and try again");
  });

  it("asks for a code, naming the change, when the app could not tell the click was the person's", async () => {
    const { user, fake } = renderApp({ route: "#/connect-app" });
    let asked = 0;
    fake.handle("client_connect", (req, f) => {
      asked += 1;
      if (asked === 1) {
        fail(
          "mfa_required",
          "Warden could not tell that this click came from you (on this desktop, a program can click for you). To connect an AI app, type the 6-digit code from your authenticator app",
        );
      }
      return f.answer(req);
    });
    await user.click(await screen.findByTestId("app-cursor"));
    await user.click(await screen.findByTestId("app-server-filesystem"));
    await user.click(screen.getByTestId("app-write"));
    expect(await screen.findByTestId("mfa-why")).toHaveTextContent("To connect an AI app, type the 6-digit code");
    expect(screen.queryByText(/will not ask again for 5 minutes/)).toBeNull();
    await user.type(screen.getByTestId("mfa-code"), "123456");
    await user.click(screen.getByTestId("mfa-submit"));
    await screen.findByTestId("app-result");
    expect(fake.made("confirm")).toHaveLength(1);
    expect(asked).toBe(2);
  });
});
