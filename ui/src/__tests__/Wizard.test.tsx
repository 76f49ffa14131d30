import { screen, waitFor, within } from "@testing-library/react";
import { fail, tool } from "../test/fakeBackend";
import { renderApp } from "../test/render";
import { START, buildSpec, choosePreset, nameFromUrl, nameProblem, slug, stepProblem, urlProblem } from "../wizard";
import type { ServerPreset } from "../types";

const presets: ServerPreset[] = [
  {
    id: "filesystem",
    title: "Files",
    description: "",
    command: "npx",
    args: ["-y", "@modelcontextprotocol/server-filesystem", "{folder}"],
    needs_folder: true,
  },
  {
    id: "memory",
    title: "Memory",
    description: "",
    command: "/usr/bin/mcp-server-memory",
    args: [],
    needs_folder: false,
  },
];

describe("wizard rules", () => {
  it("needs a kind, then the details of that kind", () => {
    expect(stepProblem(0, START, presets)).toMatch(/where/);
    const local = { ...START, kind: "local" as const };
    expect(stepProblem(0, local, presets)).toBeNull();
    expect(stepProblem(1, local, presets)).toMatch(/Choose a server/);
    const files = choosePreset(local, presets[0]!);
    expect(files.name).toBe("filesystem");
    expect(stepProblem(1, files, presets)).toMatch(/folder/);
    expect(stepProblem(1, { ...files, folder: "/home/me/Documents" }, presets)).toBeNull();
    expect(stepProblem(1, { ...files, folder: "/x", name: "My Files" }, presets)).toMatch(/lowercase/);
    const remote = { ...START, kind: "remote" as const, url: "http://example.com/mcp", name: "example" };
    expect(stepProblem(1, remote, presets)).toMatch(/https/);
    expect(stepProblem(1, { ...remote, url: "https://example.com/mcp" }, presets)).toBeNull();
  });

  it("puts the chosen folder where the preset says", () => {
    const s = { ...choosePreset({ ...START, kind: "local" }, presets[0]!), folder: " /home/me/Documents " };
    expect(buildSpec(s, presets)).toEqual({
      command: "npx",
      args: ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/Documents"],
      cwd: null,
      env: {},
      url: null,
      headers: {},
    });
    expect(buildSpec({ ...START, kind: "remote", url: "https://x.example/mcp" }, presets)).toMatchObject({
      command: null,
      url: "https://x.example/mcp",
      args: [],
    });
    expect(
      buildSpec(
        { ...START, kind: "local", preset: "custom", command: "uvx", args: "mcp-server-git\n--repository\n/src\n" },
        presets,
      ),
    ).toMatchObject({ command: "uvx", args: ["mcp-server-git", "--repository", "/src"] });
  });

  it("keeps a name the person typed when they pick another preset", () => {
    const typed = { ...START, kind: "local" as const, name: "docs", nameEdited: true };
    expect(choosePreset(typed, presets[1]!).name).toBe("docs");
    expect(choosePreset({ ...START, kind: "local" }, presets[1]!).name).toBe("memory");
  });

  it("makes valid names", () => {
    expect(slug("My Files!")).toBe("my-files");
    expect(nameFromUrl("https://mcp.linear.app/sse")).toBe("linear");
    expect(nameProblem("a--b")).not.toBeNull();
    expect(nameProblem("github-work")).toBeNull();
    expect(urlProblem("http://localhost:8080/mcp")).toBeNull();
    expect(urlProblem("ftp://x")).not.toBeNull();
  });
});

describe("Connect a server", () => {
  it("adds a local preset with the folder, asking for a code when Warden wants one, and lists its tools", async () => {
    const { user, fake } = renderApp({ route: "#/connect-server", state: { servers: [] } });
    let confirmed = false;
    fake.handle("server_add", (req, f) => {
      if (!confirmed) fail("mfa_required", "to approve a local server's command, confirm it is you first");
      if (req.call === "server_add") {
        f.state.servers.push({
          name: req.name,
          transport: "stdio",
          target: "npx",
          state: "ready",
          era: null,
          tools: 2,
          restarts: 0,
          probe: null,
          trusted: false,
          auto_trust_new_tools: false,
        });
        f.state.tools[req.name] = [
          tool("read_file"),
          tool("write_file", "high"),
          tool("list_directory", "high", { annotations: { readOnlyHint: true } }),
        ];
      }
      return { kind: "done" };
    });
    fake.handle("confirm", (req) => {
      confirmed = req.call === "confirm" && req.totp === "123456";
      return { kind: "done" };
    });
    await user.click(await screen.findByTestId("wizard-next"));
    expect(screen.getByTestId("wizard-problem")).toHaveTextContent(/where the server runs/);
    await user.click(screen.getByTestId("wizard-local"));
    await user.click(screen.getByTestId("wizard-next"));
    await user.click(await screen.findByTestId("preset-filesystem"));
    expect(screen.getByTestId("wizard-name")).toHaveValue("filesystem");
    await user.click(screen.getByTestId("wizard-next"));
    expect(screen.getByTestId("wizard-problem")).toHaveTextContent(/folder/);
    await user.type(screen.getByTestId("wizard-folder"), "/home/alice/Documents");
    await user.click(screen.getByTestId("wizard-next"));

    await user.type(await screen.findByTestId("mfa-code"), "123456");
    await user.click(screen.getByTestId("mfa-submit"));

    const result = await screen.findByTestId("wizard-result");
    await waitFor(() => expect(within(result).getAllByTestId("risk-badge")).toHaveLength(3));
    expect(result).toHaveTextContent("write_file");
    // The untrusted server's own "read-only" claim is why list_directory is risky.
    expect(within(result).getByTestId("wizard-untrusted-hint")).toHaveTextContent(
      /1 of these tools says it only reads.*Trust this server's risk hints/,
    );
    const adds = fake.made("server_add");
    expect(adds).toHaveLength(2);
    expect(adds[1]!.spec.args).toEqual(["-y", "@modelcontextprotocol/server-filesystem", "/home/alice/Documents"]);
    await user.click(screen.getByTestId("wizard-finish"));
    expect(await screen.findByTestId("server-filesystem")).toBeInTheDocument();
  });

  it("signs in to a remote server step by step and shows the probe verdict", async () => {
    const { user, fake } = renderApp({ route: "#/connect-server" });
    let release!: () => void;
    fake
      .handle("server_login_start", () => ({
        kind: "login_started",
        value: {
          flow: "fl",
          url: "https://auth.example/authorize",
          issuer: "https://auth.example",
          registration: "dynamic",
          scopes: null,
        },
      }))
      .handle(
        "server_login_finish",
        () =>
          new Promise((resolve) => {
            release = () => resolve({ kind: "signed_in_to", value: {} as never });
          }),
      )
      .handle("server_probe", () => ({ kind: "probe", value: { server: "linear", verdict: "enforcing", checks: [] } }));
    await user.click(await screen.findByTestId("wizard-remote"));
    await user.click(screen.getByTestId("wizard-next"));
    await user.type(screen.getByTestId("wizard-url"), "https://mcp.linear.app/mcp");
    expect(screen.getByTestId("wizard-name")).toHaveValue("linear");
    await user.click(screen.getByTestId("wizard-next"));
    expect(await screen.findByTestId("wizard-signin-url")).toHaveTextContent("https://auth.example/authorize");
    expect(screen.getByText("Waiting for you to sign in in your browser")).toBeInTheDocument();
    release();
    const result = await screen.findByTestId("wizard-result");
    expect(within(result).getByTestId("wizard-probe")).toHaveTextContent(/Refuses callers without a valid sign-in/);
    expect(fake.calls.map((c) => c.call).filter((c) => c.startsWith("server_"))).toEqual(
      expect.arrayContaining(["server_add", "server_login_start", "server_login_finish", "server_probe"]),
    );
    expect(fake.made("server_add")[0]).toMatchObject({
      name: "linear",
      spec: { url: "https://mcp.linear.app/mcp", command: null },
    });
  });

  it("tells members that only an admin connects servers", async () => {
    const alice = {
      id: 2,
      name: "bob",
      role: "member",
      status: "active",
      totp_enrolled: true,
      created_at_us: 0,
      last_login_us: null,
      invited: false,
    };
    renderApp({
      route: "#/connect-server",
      state: {
        status: {
          initialized: true,
          user: alice,
          sso: false,
          endpoint: null,
          paused: false,
          version: "0",
          data_dir: null,
          held_settings: [],
        },
      },
    });
    expect(await screen.findByText("Only an admin can connect servers")).toBeInTheDocument();
    expect(screen.queryByTestId("wizard-local")).not.toBeInTheDocument();
  });
});
