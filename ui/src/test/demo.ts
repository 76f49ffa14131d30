// A demo install for `npm run dev` in a plain browser (never in a build).
import { FakeBackend, approval, row, server, tool } from "./fakeBackend";

export function demoBackend(): FakeBackend {
  const today = Math.floor(Date.now() / 86_400_000);
  const fake = new FakeBackend({
    servers: [
      server("filesystem", { tools: 3 }),
      server("github", {
        transport: "http",
        target: "https://api.githubcopilot.com/mcp/",
        probe: "enforcing",
        tools: 2,
      }),
      server("notes", { state: "failed", error: "the program mcp-notes was not found" } as never),
      server("shell", { state: "blocked", reason: "the command changed since an admin approved it" } as never),
    ],
    tools: {
      filesystem: [tool("read_file"), tool("list_directory"), tool("write_file", "high")],
      github: [
        tool("search_issues"),
        tool("create_issue", "high", {
          warden: {
            risk: "high",
            why: ["it is not marked read-only", "it reaches the open world"],
            definition_hash: "x",
            state: "quarantined",
            quarantine: "changed",
          },
        }),
      ],
    },
    pending: [
      approval("a1"),
      approval("a2", {
        tool: "delete_repo",
        server: "github",
        risk: "critical",
        why: ["an admin marked it critical"],
        arguments: { repo: "acme/site" },
        chain: ["alice", "planner", "coder"],
      }),
    ],
    activity: Array.from({ length: 60 }, (_, i) =>
      row(
        i + 1,
        i % 5 === 0
          ? { tool: "write_file", decision: "ask", risk: "high", outcome: "approved" }
          : i % 7 === 0
            ? { decision: "deny", outcome: "refused" }
            : {},
      ),
    ),
    days: Array.from({ length: 7 }, (_, i) => [
      { day: today - 6 + i, decision: "allow", calls: 10 + i * 3 },
      { day: today - 6 + i, decision: "ask", calls: 2 + (i % 3) },
      { day: today - 6 + i, decision: "deny", calls: i % 2 },
    ]).flat(),
  });
  fake.latencyMs = 250;
  // ?demo=signin or ?demo=firstrun shows those screens instead.
  const mode = new URLSearchParams(window.location.search).get("demo");
  if (mode === "signin") fake.state.status = { ...fake.state.status, user: null, sso: true };
  if (mode === "firstrun") fake.state.status = { ...fake.state.status, user: null, initialized: false };
  if (mode === "member") fake.state.status = { ...fake.state.status, user: fake.state.users[1]! };
  return fake;
}
