"""Bad input gets a clear error, changes nothing, logs nothing and never
crashes the gateway."""

from __future__ import annotations

import json
import subprocess

from conftest import MODERN_META, WARDEN, peer


def activity_count(warden) -> int:
    return len(warden.cli("log", "--json", "--limit", "100000").stdout.splitlines())


def started(warden):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("bot")
    warden.start()
    return token


def still_serving(warden, token):
    r = warden.post({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": "ok"}, "_meta": MODERN_META}}, token)
    assert r.json()["result"]["content"][0]["text"] == "Echo: ok", r.text
    assert warden.proc.poll() is None, "the gateway is still running"


def test_malformed_requests_get_json_rpc_errors_and_no_activity(warden):
    token = started(warden)
    before = activity_count(warden)
    cases = [
        (b"{not json", 400, -32700),
        (b"", 400, -32700),
        (b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]', 400, -32600),
        (b'{"jsonrpc":"1.0","id":1,"method":"tools/list"}', 400, -32600),
        (b'{"jsonrpc":"2.0","id":1}', 200, -32600),
        (b'\xff\xfe{"jsonrpc":"2.0"}', 400, -32700),
    ]
    for body, status, code in cases:
        r = warden.post(body, token)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert r.json()["error"]["code"] == code, (body, r.text)
    unknown = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/destroy", "params": {"_meta": MODERN_META}}, token)
    assert unknown.json()["error"]["code"] == -32601
    no_tool = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ev__nope", "arguments": {}, "_meta": MODERN_META}}, token)
    assert no_tool.json()["error"]["code"] == -32602
    assert "ev__nope" in no_tool.json()["error"]["message"]
    assert activity_count(warden) == before, "refused requests leave no activity row"
    still_serving(warden, token)


def test_oversized_bodies_are_refused_with_413(warden):
    warden.data_dir.joinpath("config.toml").write_text("[gateway]\nmax_body_bytes = 4096\n")
    token = started(warden)
    before = activity_count(warden)
    big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": "x" * 10000}, "_meta": MODERN_META}}
    r = warden.post(big, token)
    assert r.status_code == 413
    assert "4096" in r.json()["error"]["message"]
    assert activity_count(warden) == before
    still_serving(warden, token)


def test_foreign_host_or_origin_is_forbidden(warden):
    token = started(warden)
    port = warden.url.split(":")[2].split("/")[0]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}
    assert warden.post(body, token, {"host": f"evil.example:{port}"}).status_code == 403
    assert warden.post(body, token, {"origin": "http://evil.example"}).status_code == 403
    assert warden.post(body, token, {"origin": f"http://127.0.0.1:{port}.evil.example"}).status_code == 403
    assert warden.post(body, token, {"origin": f"http://localhost:{port}"}).status_code == 200
    still_serving(warden, token)


def test_bodies_a_browser_can_send_cross_site_are_refused_with_415(warden):
    # text/plain, form and multipart bodies need no preflight in a browser:
    # Warden serves none of them, in either era, and records nothing.
    token = started(warden)
    before = activity_count(warden)
    modern = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}
    legacy = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    for body in (modern, legacy):
        for kind in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = warden.post(body, token, {"content-type": kind})
            assert r.status_code == 415, (kind, r.status_code, r.text)
            assert "application/json" in r.json()["error"]["message"]
    assert activity_count(warden) == before
    assert warden.post(modern, token, {"content-type": "application/json; charset=utf-8"}).status_code == 200
    still_serving(warden, token)


def test_missing_or_wrong_credentials_get_401_without_detail(warden):
    token = started(warden)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}
    responses = [
        warden.post(body, None),
        warden.post(body, "wdn_" + "A" * 43),
        warden.post(body, token[:-1]),
        warden.post(body, None, {"authorization": f"Basic {token}"}),
    ]
    for r in responses:
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert len({r.text for r in responses}) == 1, "no detail tells one failure from another"
    still_serving(warden, token)


def test_unknown_session_is_404_and_sessions_are_bound_to_their_agent(warden):
    token = started(warden)
    other = warden.add_agent("other")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = warden.post(init, token)
    sid = r.headers["mcp-session-id"]
    list_ = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert warden.post(list_, token, {"mcp-session-id": sid}).status_code == 200
    assert warden.post(list_, other, {"mcp-session-id": sid}).status_code == 404
    assert warden.post(list_, token, {"mcp-session-id": "f" * 32}).status_code == 404


def test_unsupported_modern_version_names_the_supported_one(warden):
    token = started(warden)
    meta = dict(MODERN_META, **{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}, token)
    err = r.json()["error"]
    assert err["code"] == -32022 and "2026-07-28" in err["data"]["supported"]


def test_a_missing_server_command_fails_that_server_only(warden):
    warden.cli("server", "add", "ghost", "--", "/nonexistent/bin/mcp-ghost")
    token = started(warden)
    servers = {s["name"]: s for s in warden.servers()}
    assert servers["ghost"]["state"] == "failed"
    assert "was not found" in servers["ghost"]["error"]
    assert servers["ev"]["state"] == "ready"
    still_serving(warden, token)


def test_an_invalid_config_file_names_file_line_and_field(warden):
    cfg = warden.data_dir / "config.toml"
    cfg.write_text('[gateway]\nlisten = "127.0.0.1:0"\n\n[servers.files]\ncomand = "npx"\n')
    out = subprocess.run([str(WARDEN), "--data-dir", str(warden.data_dir), "serve"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "config.toml" in out.stderr and "line 5" in out.stderr and "comand" in out.stderr, out.stderr
    cfg.write_text('[gateway]\nlisten = "0.0.0.0:7411"\n')
    out = subprocess.run([str(WARDEN), "--data-dir", str(warden.data_dir), "serve"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "loopback" in out.stderr


def test_cli_refuses_bad_server_definitions_and_changes_nothing(warden):
    for args in (
        ["server", "add", "Bad_Name", "--", "true"],
        ["server", "add", "web", "--url", "http://example.com/mcp"],
        ["server", "add", "web", "--url", "ftp://127.0.0.1/mcp"],
        ["server", "add", "empty"],
    ):
        out = warden.cli(*args, check=False)
        assert out.returncode != 0, args
        assert out.stderr.startswith("error: "), out.stderr
    assert warden.servers() == []
    assert not (warden.data_dir / "config.toml").exists()
    warden.cli("server", "add", "ev", "--", "true")
    dup = warden.cli("server", "add", "ev", "--", "false", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr


def test_secrets_in_arguments_never_reach_the_database_or_logs(warden):
    token = started(warden)
    secret = "sk-" + "Q" * 40
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": secret, "api_key": "hunter2hunter2"}, "_meta": MODERN_META}}, token)
    assert "result" in r.json() or "error" in r.json()
    warden.stop()
    blobs = b"".join(p.read_bytes() for p in warden.data_dir.rglob("*") if p.is_file())
    assert secret.encode() not in blobs
    assert b"hunter2hunter2" not in blobs
    assert token.encode() not in blobs, "the agent credential is never stored"
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    call = next(r for r in rows if r["kind"] == "tool_call.requested")
    assert call["arguments_hash"] and "[redacted:" in call["arguments"]


def test_the_cli_shows_a_servers_control_characters_instead_of_obeying_them(warden):
    import sys

    from conftest import ROOT
    from conftest import MODERN_META
    from test_approvals import call_later, result_of, wait_pending

    sly = ROOT / "tests" / "servers" / "misbehaving_server.py"
    warden.cli("server", "add", "sly", "--", sys.executable, str(sly), "sly")
    warden.cli("role", "add", "asker")
    warden.cli("grant", "asker", "sly", "*", "ask")
    token = warden.add_agent("bot", "asker")
    warden.start()
    tools = warden.cli("server", "tools", "sly").stdout
    # Agents see the tool under a name made safe for them; what a person
    # reads in the CLI is the server's own name.
    listed_tools = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}, token).json()
    [exposed] = [t["name"] for t in listed_tools["result"]["tools"]]
    assert "\x1b" not in exposed
    f = call_later(warden, token, exposed, {})
    [req] = wait_pending(warden)
    listed = warden.cli("approvals", "list").stdout
    warden.cli("approvals", "deny", req["id"])
    result_of(f)
    log = warden.cli("log", "--limit", "200").stdout
    for name, out in (("server tools", tools), ("approvals list", listed), ("log", log)):
        assert "\x1b" not in out and "\u202e" not in out, f"{name} printed a raw control character"
        assert "delete_all\\x1b[8m" in out, (name, out)
    assert "\\u{202e}txt.exe" in tools, tools
