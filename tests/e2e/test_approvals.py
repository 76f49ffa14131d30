"""High-risk calls wait for a person: real servers behind Warden, answered
from the command line as a person would."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx2

from conftest import MODERN_META, ROOT, legacy_session, peer

RUGPULL = ROOT / "tests" / "servers" / "rugpull_server.py"
POOL = ThreadPoolExecutor(max_workers=4)


def approval_timeout(warden, secs: int) -> None:
    cfg = warden.data_dir / "config.toml"
    text_ = cfg.read_text()
    assert "timeout_secs = 120" in text_, text_
    cfg.write_text(text_.replace("timeout_secs = 120", f"timeout_secs = {secs}"))


def messages(r: httpx2.Response) -> list[dict]:
    """The JSON-RPC messages of a response, plain or streamed (SSE)."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(l[5:]) for l in r.text.splitlines() if l.startswith("data:") and l[5:].strip()]
    return [r.json()]


def call_later(warden, token: str, tool: str, args: dict, progress: str | None = None, i: int = 1) -> Future:
    meta = dict(MODERN_META)
    if progress:
        meta["progressToken"] = progress
    body = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": args, "_meta": meta}}

    def run():
        h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
             "authorization": f"Bearer {token}", "mcp-protocol-version": "2026-07-28",
             "mcp-method": "tools/call", "mcp-name": tool}
        return httpx2.post(warden.url, content=json.dumps(body), headers=h, timeout=200)

    return POOL.submit(run)


def result_of(f: Future, timeout: float = 120) -> tuple[dict, list[dict]]:
    msgs = messages(f.result(timeout=timeout))
    final = next(m for m in msgs if "id" in m)
    return final["result"], [m for m in msgs if m.get("method") == "notifications/progress"]


def pending(warden) -> list[dict]:
    return json.loads(warden.cli("approvals", "list", "--json").stdout)


def wait_pending(warden, n: int = 1, timeout: float = 30) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = pending(warden)
        if len(p) >= n:
            return p
        time.sleep(0.2)
    raise AssertionError(f"no approval request arrived: {warden.log()[-2000:]}")


def log(warden, *args: str) -> list[dict]:
    return [json.loads(l) for l in warden.cli("log", "--json", *args).stdout.splitlines()]


def text(result: dict) -> str:
    return result["content"][0]["text"]


def setup_writer(warden, files_root, *, owner: str = "ana"):
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    warden.cli("role", "add", "writer")
    warden.cli("grant", "writer", "fs", "*", "allow")
    person = warden.add_person(owner)
    out = warden.cli("agent", "add", f"{owner}-bot", "--owner", owner, "--role", "writer", "--json")
    return person, json.loads(out.stdout)["credential"]


def test_a_write_waits_for_its_owner_and_completes_when_approved(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    approval_timeout(warden, 90)
    warden.start()
    target = files_root / "note.txt"
    f = call_later(warden, token, "fs__write_file", {"path": str(target), "content": "approved text", "api_key": "sk-live-0123456789abcdef"}, progress="p1")
    [req] = wait_pending(warden)
    assert (req["agent"], req["person"], req["server"], req["tool"], req["risk"]) == ("ana-bot", "ana", "fs", "write_file", "high")
    assert any("change or delete" in w or "trusted" in w for w in req["why"]), req["why"]
    assert req["arguments"]["path"] == str(target) and req["arguments"]["content"] == "approved text"
    assert "0123456789abcdef" not in json.dumps(req), "secrets are redacted in the request"
    assert not target.exists(), "nothing runs before the click"

    # Only the owner may approve; the admin is refused and nothing changes.
    other = warden.cli("approvals", "approve", req["id"], check=False)
    assert other.returncode != 0 and "only ana can approve" in other.stderr, other.stderr
    ana.login()
    # The owner is shown what the call really sends; the log keeps it masked.
    [mine] = pending(warden)
    assert mine["sent"]["api_key"] == "sk-live-0123456789abcdef" and mine["arguments"]["api_key"].startswith("[redacted:"), mine
    shown = warden.cli("approvals", "list").stdout
    assert "sk-live-0123456789abcdef" in shown
    assert "ana-bot" in shown and "write_file on fs" in shown and "risk:      high" in shown
    warden.cli("approvals", "approve", req["id"])
    result, progress = result_of(f)
    assert not result.get("isError"), result
    assert target.read_text() == "approved text"
    assert progress and "Waiting for ana to approve fs__write_file" in progress[0]["params"]["message"], progress
    assert pending(warden) == []
    # No notification server here (no display): it was logged, and nothing waited on it.
    assert "could not show a desktop notification" in warden.log()

    rows = log(warden, "--agent", "ana-bot")
    by_kind = {r["kind"]: r for r in rows}
    asked = by_kind["tool_call.requested"]
    assert (asked["decision"], asked["risk"], asked["on_behalf_of"]) == ("ask", "high", "ana")
    decided = by_kind["approval.decided"]
    assert (decided["decision"], decided["approver"], decided["outcome"]) == ("allow", "ana", "approved")
    assert json.loads(decided["detail"])["choice"] == "once"
    done = by_kind["tool_call.completed"]
    assert done["outcome"] == "ok"
    assert (done["decision"], done["approver"], json.loads(done["detail"])["choice"]) == ("allow", "ana", "once"), done
    assert decided["id"] < done["id"]


def test_a_denied_or_unanswered_call_is_an_error_that_says_so(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    approval_timeout(warden, 6)
    warden.start()
    ana.login()
    f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "d.txt"), "content": "x"})
    [req] = wait_pending(warden)
    warden.cli("approvals", "deny", req["id"], "--reason", "not into the shared folder")
    result, _ = result_of(f)
    assert result["isError"] is True
    assert "ana denied fs__write_file" in text(result) and "not into the shared folder" in text(result), text(result)
    assert not (files_root / "d.txt").exists()
    # An answer to a request that is gone is refused.
    late = warden.cli("approvals", "approve", req["id"], check=False)
    assert late.returncode != 0 and "no pending approval" in late.stderr

    started = time.time()
    f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "t.txt"), "content": "x"})
    result, _ = result_of(f)
    waited = time.time() - started
    assert result["isError"] is True and "nobody approved it within 6 seconds" in text(result), text(result)
    assert "ana" in text(result) and waited >= 5.5
    assert not (files_root / "t.txt").exists() and pending(warden) == []
    outcomes = [(r["kind"], r.get("outcome"), r.get("approver")) for r in log(warden, "--agent", "ana-bot")]
    assert ("approval.decided", "denied", "ana") in outcomes
    assert ("approval.decided", "timed_out", None) in outcomes
    assert ("tool_call.completed", "timed_out", None) in outcomes


def test_always_allow_covers_exact_arguments_and_session_approval_one_agent(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    other = json.loads(warden.cli("agent", "add", "ana-helper", "--owner", "ana", "--role", "writer", "--json").stdout)["credential"]
    approval_timeout(warden, 60)
    warden.start()
    ana.login()
    same = {"path": str(files_root / "a.txt"), "content": "same"}
    f = call_later(warden, token, "fs__write_file", same)
    warden.cli("approvals", "approve", wait_pending(warden)[0]["id"], "--always")
    assert not result_of(f)[0].get("isError")

    # The identical call (keys in another order) goes through without asking.
    again, _ = result_of(call_later(warden, token, "fs__write_file", dict(reversed(list(same.items())))), timeout=20)
    assert not again.get("isError"), again
    assert any(r["kind"] == "tool_call.requested" and (r.get("approver") or "").startswith("standing approval")
               for r in log(warden, "--agent", "ana-bot"))
    standing = json.loads(warden.cli("approvals", "standing", "--json").stdout)
    assert len(standing) == 1 and standing[0]["agent"] == "ana-bot" and standing[0]["tool"] == "write_file"

    # Other arguments ask again; so does another agent with the same ones.
    for tok, args in ((token, {"path": str(files_root / "b.txt"), "content": "other"}), (other, same)):
        f = call_later(warden, tok, "fs__write_file", args)
        [req] = wait_pending(warden)
        warden.cli("approvals", "deny", req["id"])
        assert result_of(f)[0]["isError"]
    assert not (files_root / "b.txt").exists()

    # Revoked, the same arguments ask again; for a client with a session,
    # "this session" then covers the tool in that session.
    warden.cli("approvals", "revoke-standing", str(standing[0]["id"]))
    post = legacy_session(warden, token)
    call = lambda i, args: POOL.submit(post, {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                              "params": {"name": "fs__write_file", "arguments": args}})
    f = call(1, same)
    warden.cli("approvals", "approve", wait_pending(warden)[0]["id"], "--session")
    assert not f.result(timeout=60)["result"].get("isError")
    r = call(2, {"path": str(files_root / "c.txt"), "content": "c"}).result(timeout=20)["result"]
    assert not r.get("isError") and (files_root / "c.txt").read_text() == "c"
    f = call_later(warden, other, "fs__write_file", {"path": str(files_root / "e.txt"), "content": "e"})
    warden.cli("approvals", "deny", wait_pending(warden)[0]["id"])
    assert result_of(f)[0]["isError"], "a session approval is for one agent"
    kinds = [r["kind"] for r in log(warden)]
    assert "approval.standing_revoked" in kinds


def test_critical_tools_need_a_fresh_code_and_admins_see_risk_and_why(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    warden.cli("grant", "writer", "fs", "write_file", "allow")
    approval_timeout(warden, 60)
    warden.start()
    tools = {t["name"]: t["warden"] for t in json.loads(warden.cli("server", "tools", "fs", "--json").stdout)}
    assert tools["read_text_file"]["risk"] == "high" and "no admin has marked this server trusted" in tools["read_text_file"]["why"][0]
    warden.cli("server", "trust", "fs")
    tools = {t["name"]: t["warden"] for t in json.loads(warden.cli("server", "tools", "fs", "--json").stdout)}
    assert tools["read_text_file"]["risk"] == "low" and tools["write_file"]["risk"] == "high"
    # An explicit allow of a high-risk tool runs without asking.
    r, _ = result_of(call_later(warden, token, "fs__write_file", {"path": str(files_root / "x.txt"), "content": "x"}), timeout=20)
    assert not r.get("isError")

    bad = warden.cli("tool", "risk", "fs", "write_file", "critical", check=False)
    assert bad.returncode != 0 and "say why" in bad.stderr
    warden.cli("tool", "risk", "fs", "write_file", "critical", "--reason", "the folder is shared with customers")
    tools = {t["name"]: t["warden"] for t in json.loads(warden.cli("server", "tools", "fs", "--json").stdout)}
    assert tools["write_file"]["risk"] == "critical"
    assert tools["write_file"]["why"] == ["set to critical by admin: the folder is shared with customers"]

    ana.login()
    f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "c.txt"), "content": "critical"})
    [req] = wait_pending(warden)
    assert req["risk"] == "critical"
    no_code = warden.cli("approvals", "approve", req["id"], check=False)
    assert no_code.returncode != 0 and "fresh authenticator code" in no_code.stderr
    wrong = warden.cli("approvals", "approve", req["id"], "--totp", check=False, input="000000\n")
    assert wrong.returncode != 0 and "wrong authenticator code" in wrong.stderr
    assert not (files_root / "c.txt").exists()
    warden.cli("approvals", "approve", req["id"], "--totp", input=ana.next_code() + "\n")
    assert not result_of(f)[0].get("isError")
    assert (files_root / "c.txt").read_text() == "critical"
    rows = log(warden)
    steps = [json.loads(r["detail"])["result"] for r in rows if r["kind"] == "approval.step_up"]
    assert "verified" in steps and any("wrong" in s for s in steps)
    decided = next(r for r in rows if r["kind"] == "approval.decided")
    assert json.loads(decided["detail"])["step_up"] is True and decided["risk"] == "critical"


def list_tools(warden, token: str) -> set[str]:
    r = warden.post({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": MODERN_META}}, token)
    return {t["name"] for t in r.json()["result"]["tools"]}


def test_a_tool_that_changes_after_it_was_trusted_is_quarantined_until_an_admin_accepts(warden):
    warden.cli("server", "add", "rp", "--", sys.executable, str(RUGPULL))
    warden.cli("server", "trust", "rp")
    token = warden.add_agent("calc-bot")
    warden.start()
    assert list_tools(warden, token) == {"rp__add", "rp__update"}
    r, _ = result_of(call_later(warden, token, "rp__add", {"a": 2, "b": 3}), timeout=20)
    assert r["content"][0]["text"] == "5", r

    # The server rewrites add's description and adds a tool nobody reviewed.
    r, _ = result_of(call_later(warden, token, "rp__update", {}), timeout=20)
    assert not r.get("isError"), r
    deadline = time.time() + 20
    while time.time() < deadline:
        q = {p["tool"]: p for p in json.loads(warden.cli("tool", "quarantined", "--json").stdout)}
        if {"add", "collect"} <= set(q):
            break
        time.sleep(0.2)
    assert q["add"]["reason"] == "changed" and q["collect"]["reason"] == "new", q
    assert list_tools(warden, token) == {"rp__update"}, "quarantined tools are hidden"
    r, _ = result_of(call_later(warden, token, "rp__add", {"a": 1, "b": 1, "note": "x"}), timeout=20)
    assert r["isError"] and "quarantined" in text(r) and "warden tool review rp add" in text(r), r

    review = warden.cli("tool", "review", "rp", "add").stdout
    added = [l for l in review.splitlines() if l.startswith("+ ")]
    removed = [l for l in review.splitlines() if l.startswith("- ")]
    assert any("id_rsa" in l for l in added) and any("Adds two numbers.\"" in l for l in removed), review
    warden.cli("tool", "accept", "rp", "add", "--yes")
    warden.cli("tool", "reject", "rp", "collect")
    assert list_tools(warden, token) == {"rp__add", "rp__update"}
    r, _ = result_of(call_later(warden, token, "rp__add", {"a": 20, "b": 22}), timeout=20)
    assert r["content"][0]["text"] == "42"
    r, _ = result_of(call_later(warden, token, "rp__collect", {"path": "/etc/passwd"}), timeout=20)
    assert r["isError"], "a rejected tool stays refused"
    kinds = [(r["kind"], r.get("tool")) for r in log(warden)]
    for k in (("tool.quarantined", "add"), ("tool.quarantined", "collect"), ("tool.accepted", "add"), ("tool.rejected", "collect")):
        assert k in kinds, (k, kinds)
    # Who accepted the new definition shows where the quarantine does.
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--server", "rp", "--tool", "add").stdout.splitlines()]
    accepted = [r for r in rows if r["kind"] == "tool.accepted"]
    assert accepted and accepted[0]["on_behalf_of"] == warden.admin.name, rows
    assert any(r["kind"] == "tool_call.requested" and r.get("outcome") == "quarantined" for r in log(warden))


def test_a_changed_local_command_waits_for_an_admins_fresh_consent(warden):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    cfg = warden.data_dir / "config.toml"
    # Someone edits the configuration by hand: a new variable and a new server.
    text_ = cfg.read_text().replace('args = ["stdio"]', 'args = ["stdio"]\nenv = { NODE_OPTIONS = "--max-old-space-size=256" }')
    assert "NODE_OPTIONS" in text_
    text_ += f'\n[servers.sneaky]\ncommand = "{peer("mcp-server-memory")}"\n'
    cfg.write_text(text_)
    warden.start()
    states = {s["name"]: s for s in warden.servers()}
    assert states["ev"]["state"] == "blocked" and "an admin approved an earlier form of it" in states["ev"]["reason"], states
    assert states["sneaky"]["state"] == "blocked" and "no admin has approved" in states["sneaky"]["reason"]
    token = warden.add_agent("bot")
    assert list_tools(warden, token) == set(), "nothing of a blocked server is reachable"

    shown = warden.cli("server", "consent", "ev", input="n\n").stdout
    assert "NODE_OPTIONS=--max-old-space-size=256 " in shown and "mcp-server-everything stdio" in shown, shown
    assert "Not approved" in shown
    no_code = warden.cli("server", "consent", "ev", "--yes", check=False, input="\n")
    assert no_code.returncode != 0
    # The running Warden checks the code once it has seen the admin's
    # password, which seals the authenticator secret.
    early = warden.cli("server", "consent", "ev", "--yes", check=False, input=warden.admin.next_code() + "\n")
    assert early.returncode != 0 and "sign in again" in early.stderr.lower(), early.stderr
    warden.admin.login()
    warden.cli("server", "consent", "ev", "--yes", input=warden.admin.next_code() + "\n")
    warden.wait_state("ev", "ready")
    assert any(n.startswith("ev__") for n in list_tools(warden, token))
    assert {s["name"]: s["state"] for s in warden.servers()}["sneaky"] == "blocked"
    approved = [r for r in log(warden) if r["kind"] == "server.command_approved"]
    assert approved and approved[0]["on_behalf_of"] == "admin"


def test_a_client_that_cancels_withdraws_its_request(warden, files_root):
    _, token = setup_writer(warden, files_root)
    approval_timeout(warden, 60)
    warden.start()
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"}
    init = httpx2.post(warden.url, headers=h, timeout=30, content=json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
    h["mcp-session-id"] = init.headers["mcp-session-id"]
    h["mcp-protocol-version"] = "2025-11-25"
    httpx2.post(warden.url, headers=h, timeout=30, content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    f = POOL.submit(lambda: httpx2.post(warden.url, headers=h, timeout=120, content=json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": str(files_root / "w.txt"), "content": "x"}}})))
    [req] = wait_pending(warden)
    httpx2.post(warden.url, headers=h, timeout=30, content=json.dumps(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "user pressed stop"}}))
    deadline = time.time() + 10
    while pending(warden) and time.time() < deadline:
        time.sleep(0.1)
    assert pending(warden) == [], "the cancelled call no longer waits"
    f.result(timeout=30)
    late = warden.cli("approvals", "approve", req["id"], check=False)
    assert late.returncode != 0
    assert not (files_root / "w.txt").exists()
    assert any(r["kind"] == "approval.decided" and r.get("outcome") == "withdrawn" for r in log(warden))


def test_a_risk_raised_while_a_call_waits_is_checked_again_before_it_is_sent(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    approval_timeout(warden, 60)
    warden.start()
    ana.login()
    target = files_root / "raised.txt"
    f = call_later(warden, token, "fs__write_file", {"path": str(target), "content": "x"})
    [req] = wait_pending(warden)
    assert req["risk"] == "high"
    warden.admin.login()
    warden.cli("tool", "risk", "fs", "write_file", "critical", "--reason", "shared with customers")
    ana.login()
    warden.cli("approvals", "approve", req["id"])
    result, _ = result_of(f)
    assert result["isError"] and "raised the tool's risk to critical" in text(result), result
    assert not target.exists(), "what was approved at high risk is not sent at critical"


def test_a_stateless_client_gets_no_session_approval_that_would_cover_the_whole_agent(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    approval_timeout(warden, 60)
    warden.start()
    ana.login()
    f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "s.txt"), "content": "s"})
    [req] = wait_pending(warden)
    assert req["session_choice"] is False, "a 2026-07-28 client keeps no session"
    refused = warden.cli("approvals", "approve", req["id"], "--session", check=False)
    assert refused.returncode != 0 and "keeps no session with Warden" in refused.stderr, refused.stderr
    assert [p["id"] for p in pending(warden)] == [req["id"]], "a refused answer changes nothing"
    warden.cli("approvals", "approve", req["id"])
    assert not result_of(f)[0].get("isError")
    # The next call with other arguments asks again.
    f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "t.txt"), "content": "t"})
    [again] = wait_pending(warden)
    warden.cli("approvals", "deny", again["id"])
    assert result_of(f)[0]["isError"] and not (files_root / "t.txt").exists()


class Recorder:
    """An HTTP listener on 127.0.0.1 that keeps the headers of every request
    it gets and answers 404: where an edited address would send a secret."""

    def __init__(self):
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                seen.append(dict(self.headers))
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_DELETE = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mcp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_an_edit_of_the_configuration_that_loosens_it_waits_for_an_admin(warden, files_root):
    ana, token = setup_writer(warden, files_root)
    first, elsewhere = Recorder(), Recorder()
    try:
        secret = "tok-" + os.urandom(12).hex()
        warden.cli("secret", "set", "work-token", input=secret + "\n")
        warden.cli("server", "add", "work", "--url", first.url, "--header", "Authorization=keychain:work-token")
        # A process of the person's OS user edits the file: the secret's
        # server somewhere else, calls that wait an hour, no notifications,
        # and a log cut to one row.
        cfg = warden.data_dir / "config.toml"
        text_ = cfg.read_text()
        for old, new in (("timeout_secs = 120", "timeout_secs = 3600"),
                         ("desktop_notifications = true", "desktop_notifications = false"),
                         (first.url, elsewhere.url),
                         ("[activity]\n", "[activity]\nmax_rows = 1\n")):
            assert old in text_, (old, text_)
            text_ = text_.replace(old, new)
        cfg.write_text(text_)
        warden.start()
        work = warden.wait_state("work", "blocked")
        assert "would go somewhere new" in work["reason"], work
        assert first.seen == [] and elsewhere.seen == [], "the secret went nowhere"

        review = warden.cli("config", "review").stdout
        for name in ("approvals.timeout_secs", "approvals.desktop_notifications", "activity.max_rows"):
            assert name in review, review
        [held] = [r for r in log(warden) if r["kind"] == "config.change_held"]
        assert {h["setting"] for h in json.loads(held["detail"])["held"]} == {
            "approvals.timeout_secs", "approvals.desktop_notifications", "activity.max_rows"}
        assert len(log(warden)) > 1, "the log was not cut to one row"

        # Meanwhile the approved values hold: a call waits 120 s, and asks
        # with a notification.
        f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "a.txt"), "content": "x"})
        [req] = wait_pending(warden)
        waits = req["expires_at_us"] / 1e6 - time.time()
        assert 60 < waits <= 120, waits
        # (Shown, or tried where no notification server runs.)
        deadline = time.time() + 40
        while not any(w in warden.log() for w in ("could not show a desktop notification",
                                                   "approval request shown as a desktop notification")):
            assert time.time() < deadline, "no notification was tried: notifications were off"
            time.sleep(0.2)
        ana.login()
        warden.cli("approvals", "deny", req["id"])
        result_of(f)

        # Approving needs the admin's code; a wrong one changes nothing.
        warden.admin.login()
        wrong = warden.cli("config", "approve", "--yes", input="000000\n", check=False)
        assert wrong.returncode != 0, wrong.stdout
        assert "approvals.timeout_secs" in warden.cli("config", "review").stdout
        warden.cli("config", "approve", "--yes", input=warden.admin.next_code() + "\n")
        assert "Every setting in config.toml is in force" in warden.cli("config", "review").stdout
        [approved] = [r for r in log(warden) if r["kind"] == "config.change_approved"]
        assert approved["on_behalf_of"] == "admin"
        # (This call waits until Warden stops at the end of the test.)
        call_later(warden, token, "fs__write_file", {"path": str(files_root / "b.txt"), "content": "y"}, i=2)
        [req] = wait_pending(warden)
        assert req["expires_at_us"] / 1e6 - time.time() > 3000, "the approved timeout is in force"

        # Nor can a new sign-in be aimed at the edited address.
        login = warden.cli("server", "login", "work", "--no-browser", check=False)
        assert login.returncode != 0 and "has not been approved by an admin" in login.stderr, login.stderr
        assert elsewhere.seen == []

        # Where the secret goes is approved the same way, and only then sent.
        shown = warden.cli("server", "consent", "work", input="n\n").stdout
        assert elsewhere.url in shown and "the secret work-token" in shown and "host: 127.0.0.1:" in shown, shown
        warden.cli("server", "consent", "work", "--yes", input=warden.admin.next_code() + "\n")
        deadline = time.time() + 30
        while not elsewhere.seen and time.time() < deadline:
            time.sleep(0.2)
        assert elsewhere.seen and {k.lower(): v for k, v in elsewhere.seen[0].items()}["authorization"] == secret, elsewhere.seen
        assert first.seen == []

        # A removed server's approval goes with it: the same entry put back
        # by hand waits for an admin again.
        entry = cfg.read_text()
        warden.cli("server", "remove", "work")
        warden.stop()
        cfg.write_text(entry)
        sent = len(elsewhere.seen)
        warden.start()
        back = warden.wait_state("work", "blocked")
        assert "no admin has approved" in back["reason"], back
        assert len(elsewhere.seen) == sent
    finally:
        first.close()
        elsewhere.close()
