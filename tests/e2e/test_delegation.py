"""Delegation by token exchange (RFC 8693): agent B acting for agent A acting
for a person can do only what both may, and its events carry the chain."""

from __future__ import annotations

import json

import httpx2

from conftest import MODERN_META, peer

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def exchange(warden, subject: str, actor: str, **extra) -> httpx2.Response:
    form = {"grant_type": EXCHANGE, "subject_token": subject, "subject_token_type": ACCESS,
            "actor_token": actor, "actor_token_type": ACCESS, **extra}
    return httpx2.post(warden.url.removesuffix("/mcp") + "/token", data=form, timeout=10)


def call(warden, token: str, tool: str, args: dict, i: int = 1):
    return warden.post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": args, "_meta": MODERN_META}}, token)


def test_a_sub_agent_gets_the_intersection_and_its_events_carry_the_chain(warden, files_root):
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    warden.cli("server", "trust", "fs")
    warden.cli("role", "add", "files")
    warden.cli("grant", "files", "fs", "*", "allow", "--explicit")
    warden.cli("role", "add", "reader-echo")
    warden.cli("grant", "reader-echo", "fs", "read_*", "allow")
    warden.cli("grant", "reader-echo", "ev", "echo", "allow")
    a = warden.add_agent("planner", "files")
    b = warden.add_agent("helper", "reader-echo")
    c = warden.add_agent("scribe", "files")
    warden.start()

    r = exchange(warden, a, b)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["token_type"] == "Bearer" and issued["issued_token_type"] == ACCESS
    assert 0 < issued["expires_in"] <= 900
    t = issued["access_token"]

    listed = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}, t).json()
    names = {tool["name"] for tool in listed["result"]["tools"]}
    assert names and all(n.startswith("fs__read_") for n in names), names
    ok = call(warden, t, "fs__read_text_file", {"path": str(files_root / "hello.txt")}).json()["result"]
    assert not ok.get("isError") and "hello from the filesystem server" in ok["content"][0]["text"]
    own = call(warden, t, "fs__write_file", {"path": str(files_root / "w.txt"), "content": "x"}).json()["result"]
    assert own["isError"] and 'agent "helper" has no role that allows it' in own["content"][0]["text"], \
        "the sub-agent itself may not write"
    theirs = call(warden, t, "ev__echo", {"message": "x"}).json()["result"]
    assert theirs["isError"], "the delegating agent may not echo"
    assert 'acts for "planner" through a delegation, and "planner" may not use it' in theirs["content"][0]["text"], \
        "the refusal names the link that lacks the tool, not the delegate"
    assert not (files_root / "w.txt").exists()

    # The chain grows: scribe acting for helper acting for planner.
    r2 = exchange(warden, t, c)
    assert r2.status_code == 200, r2.text
    t2 = r2.json()["access_token"]
    assert call(warden, t2, "fs__write_file", {"path": str(files_root / "w.txt"), "content": "x"}).json()["result"]["isError"]
    ok2 = call(warden, t2, "fs__read_text_file", {"path": str(files_root / "hello.txt")}).json()["result"]
    assert not ok2.get("isError")

    rows = [json.loads(l) for l in warden.cli("log", "--json", "--limit", "200").stdout.splitlines()]
    calls = [r for r in rows if r["kind"].startswith("tool_call.") and r.get("chain")]
    chains = {(r["agent"], r["chain"], r["on_behalf_of"]) for r in calls}
    assert ("helper", json.dumps(["admin", "planner", "helper"], separators=(",", ":")), "admin") in chains, chains
    assert ("scribe", json.dumps(["admin", "planner", "helper", "scribe"], separators=(",", ":")), "admin") in chains, chains

    # Revoking any agent in the chain ends the delegated credentials at once.
    warden.cli("agent", "revoke", "planner")
    assert call(warden, t, "fs__read_text_file", {"path": str(files_root / "hello.txt")}).status_code == 401
    assert call(warden, t2, "fs__read_text_file", {"path": str(files_root / "hello.txt")}).status_code == 401


def test_bad_exchanges_are_refused(warden):
    warden.cli("role", "add", "none")
    a = warden.add_agent("a1", "none")
    b = warden.add_agent("b1", "none")
    warden.start()
    r = exchange(warden, a, b, grant_type="client_credentials")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    # RFC 8693 2.2.2: a subject or actor token that is invalid or
    # unacceptable by policy is answered with invalid_request.
    r = exchange(warden, "wdn_" + "x" * 43, b)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = exchange(warden, a, a)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = exchange(warden, a, b, subject_token_type="urn:ietf:params:oauth:token-type:id_token")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = httpx2.post(warden.url.removesuffix("/mcp") + "/token", data={"grant_type": EXCHANGE}, headers={"host": "evil.example"}, timeout=10)
    assert r.status_code == 403


def test_no_delegation_is_handed_out_that_the_log_does_not_show(warden):
    import sqlite3

    warden.cli("role", "add", "none")
    a = warden.add_agent("a2", "none")
    b = warden.add_agent("b2", "none")
    warden.start()
    blocker = sqlite3.connect(warden.data_dir / "warden.db", timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        r = exchange(warden, a, b)
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable", r.text
        assert "access_token" not in r.json()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--kind", "delegation.issued").stdout.splitlines()]
    assert rows == [], rows
    ok = exchange(warden, a, b)
    assert ok.status_code == 200, ok.text
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--kind", "delegation.issued").stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["agent"] == "b2", rows
