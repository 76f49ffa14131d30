"""The gateway in front of real servers, called by the official Python SDK."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from contextlib import asynccontextmanager

import sys

import anyio
import httpx2
import mcp.types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from conftest import MODERN_META, ROOT, WARDEN, peer

FIXTURE = ROOT / "tests" / "servers" / "conformance_server.py"


@asynccontextmanager
async def through_warden(url: str, token: str, mode: str):
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30)
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def text_of(result) -> list[str]:
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


def setup_three(warden, files_root):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    warden.cli("server", "add", "mem", "--env", f"MEMORY_FILE_PATH={warden.data_dir / 'memory.jsonl'}", "--", peer("mcp-server-memory"))
    token = warden.add_agent("bot")
    warden.start()
    states = {s["name"]: s["state"] for s in warden.servers()}
    assert states == {"ev": "ready", "fs": "ready", "mem": "ready"}, (states, warden.log())
    return token


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_python_sdk_lists_and_calls_namespaced_tools_like_a_direct_client(warden, files_root, mode):
    token = setup_three(warden, files_root)

    async def main():
        async with through_warden(warden.url, token, mode) as client:
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            assert {"ev__echo", "fs__read_text_file", "mem__read_graph"} <= names
            assert all(n.split("__", 1)[0] in ("ev", "fs", "mem") for n in names)
            echo = await client.call_tool("ev__echo", {"message": "through warden"})
            read = await client.call_tool("fs__read_text_file", {"path": str(files_root / "hello.txt")})
            added = await client.call_tool("ev__get-sum", {"a": 2, "b": 40})
        async with Client(StdioServerParameters(command=peer("mcp-server-everything"), args=["stdio"])) as direct:
            d_echo = await direct.call_tool("echo", {"message": "through warden"})
            d_sum = await direct.call_tool("get-sum", {"a": 2, "b": 40})
            d_tools = await direct.list_tools()
        async with Client(StdioServerParameters(command=peer("mcp-server-filesystem"), args=[str(files_root)])) as direct_fs:
            d_read = await direct_fs.call_tool("read_text_file", {"path": str(files_root / "hello.txt")})
        assert text_of(echo) == text_of(d_echo) == ["Echo: through warden"]
        assert text_of(added) == text_of(d_sum)
        assert text_of(read) == text_of(d_read)
        assert "hello from the filesystem server" in text_of(read)[0]
        # Every tool the server shows a plain client is there. (Warden offers the
        # server sampling, elicitation and roots, so it may show a few more.)
        assert {f"ev__{t.name}" for t in d_tools.tools} <= names

    anyio.run(main)


def test_fields_the_sdk_does_not_model_pass_through_unchanged(warden, files_root):
    token = setup_three(warden, files_root)
    listed = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}, token).json()
    echo = next(t for t in listed["result"]["tools"] if t["name"] == "ev__echo")
    # What the server itself sends, asked directly over stdio.
    direct = subprocess.run(
        [peer("mcp-server-everything"), "stdio"],
        input="\n".join(json.dumps(m) for m in [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ]) + "\n",
        capture_output=True, text=True, timeout=30,
    )
    lines = [json.loads(l) for l in direct.stdout.splitlines() if l.startswith("{")]
    direct_echo = next(t for m in lines if m.get("id") == 2 for t in m["result"]["tools"] if t["name"] == "echo")
    assert "execution" in direct_echo, "the reference server sends tools[].execution"
    expected = dict(direct_echo, name="ev__echo")
    assert echo == expected
    assert list(echo.keys()) == list(expected.keys()), "field order is kept"


def test_single_server_endpoint_uses_the_servers_own_names(warden, files_root):
    token = setup_three(warden, files_root)

    async def main():
        base = warden.url.removesuffix("/mcp")
        async with through_warden(f"{base}/servers/ev/mcp", token, "legacy") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "echo" in names and not any("__" in n for n in names)
            r = await client.call_tool("echo", {"message": "solo"})
            assert text_of(r) == ["Echo: solo"]

    anyio.run(main)
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--server", "ev").stdout.splitlines()]
    kinds = [(r["kind"], r["tool"], r["agent"]) for r in rows]
    assert ("tool_call.requested", "echo", "bot") in kinds
    assert ("tool_call.completed", "echo", "bot") in kinds


def test_progress_reaches_the_client_that_asked(warden, files_root):
    token = setup_three(warden, files_root)
    seen = []

    async def main():
        async with through_warden(warden.url, token, "legacy") as client:
            async def on_progress(progress, total, message):
                seen.append((progress, total))

            r = await client.call_tool(
                "ev__trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress
            )
            assert "completed" in text_of(r)[0]

    anyio.run(main)
    assert [p for p, _ in seen] == [1, 2, 3]


@pytest.mark.parametrize("transport,path", [("streamableHttp", "/mcp"), ("sse", "/sse")])
def test_remote_upstreams_over_streamable_http_and_the_old_sse_transport(warden, transport, path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), NODE_OPTIONS=f"--require {os.path.dirname(__file__)}/loopback.cjs")
    server = subprocess.Popen([peer("mcp-server-everything"), transport], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        assert_only_loopback(port)
        warden.cli("server", "add", "remote", "--url", f"http://127.0.0.1:{port}{path}")
        token = warden.add_agent("bot")
        warden.start()
        s = warden.wait_state("remote", "ready")
        assert s["era"]["era"] == "legacy", s

        async def main():
            async with through_warden(warden.url, token, "auto") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "remote__echo" in names
                r = await client.call_tool("remote__echo", {"message": f"over {transport}"})
                assert text_of(r) == [f"Echo: over {transport}"]
                seen = []

                async def on_progress(progress, total, message):
                    seen.append(progress)

                r = await client.call_tool(
                    "remote__trigger-long-running-operation", {"duration": 1, "steps": 2}, progress_callback=on_progress
                )
                assert seen == [1, 2], seen

        anyio.run(main)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_killed_server_is_restarted_and_others_never_notice(warden, files_root):
    token = setup_three(warden, files_root)
    ev_pid = child_pid(warden.proc.pid, "mcp-server-everything")
    os.killpg(ev_pid, signal.SIGKILL)
    failed = None
    deadline = time.time() + 20
    while time.time() < deadline:
        ev = next(s for s in warden.servers() if s["name"] == "ev")
        if ev["state"] == "failed" or ev["restarts"] > 0:
            failed = ev
            break
        # The other servers keep answering meanwhile.
        r = warden.post({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "mem__read_graph", "arguments": {}, "_meta": MODERN_META}}, token)
        assert "result" in r.json(), r.text
    assert failed is not None, "the killed server was never reported"
    if failed["state"] == "failed":
        assert failed["error"], failed
    warden.wait_state("ev", "ready", timeout=30)
    r = warden.post({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": "back"}, "_meta": MODERN_META}}, token)
    assert r.json()["result"]["content"][0]["text"] == "Echo: back"
    assert child_pid(warden.proc.pid, "mcp-server-everything") != ev_pid


def test_stopping_warden_leaves_no_child_process(warden, files_root):
    setup_three(warden, files_root)
    kids = descendants(warden.proc.pid)
    assert len(kids) >= 3, kids
    warden.stop()
    time.sleep(0.5)
    alive = [p for p in kids if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]]
    assert alive == [], f"left behind: {alive}"


def test_servers_added_and_removed_while_running_take_effect_at_once(warden, files_root):
    token = warden.add_agent("bot")
    warden.start()
    assert warden.servers() == []
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    warden.wait_state("ev", "ready")
    tools = json.loads(warden.cli("server", "tools", "ev", "--json").stdout)
    assert "echo" in {t["name"] for t in tools}
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": "new"}, "_meta": MODERN_META}}, token)
    assert r.json()["result"]["content"][0]["text"] == "Echo: new"
    kids = descendants(warden.proc.pid)
    warden.cli("server", "remove", "ev")
    assert warden.servers() == []
    time.sleep(0.5)
    assert not [p for p in kids if os.path.exists(f"/proc/{p}")], "the removed server's process is gone"
    r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": "x"}, "_meta": MODERN_META}}, token)
    assert "error" in r.json()


def test_a_new_agent_works_without_a_restart_and_revocation_is_immediate(warden, files_root):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    warden.start()
    token = warden.add_agent("late")

    async def main():
        async with through_warden(warden.url, token, "legacy") as client:
            r = await client.call_tool("ev__echo", {"message": "one"})
            assert text_of(r) == ["Echo: one"]
            warden.cli("agent", "revoke", "late")
            with pytest.raises(Exception):
                await client.call_tool("ev__echo", {"message": "two"})

    anyio.run(main)
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}, token)
    assert r.status_code == 401


def test_warden_connect_relays_stdio_with_the_keychain_credential(warden, files_root):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    created = json.loads(warden.cli("agent", "add", "desktop", "--role", warden.ensure_all_role(), "--json").stdout)
    assert created["keychain"] is None, f"the keychain must be available for this test: {created['keychain']}"
    warden.start()

    async def main():
        # The SDK passes a child only a few variables; the session bus is what
        # the keychain needs, as a desktop client's own environment carries.
        env = {k: os.environ[k] for k in ("PATH", "HOME", "DBUS_SESSION_BUS_ADDRESS") if k in os.environ}
        params = StdioServerParameters(command=str(WARDEN), args=["--data-dir", str(warden.data_dir), "connect", "desktop"], env=env)
        async with Client(params, mode="legacy") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "ev__echo" in names
            r = await client.call_tool("ev__echo", {"message": "via stdio"})
            assert text_of(r) == ["Echo: via stdio"]

    anyio.run(main)
    out = warden.cli("connect", "nobody", check=False)
    assert out.returncode != 0 and "warden agent add nobody" in out.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on {port}")


def assert_only_loopback(port: int) -> None:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        local = line.split()[3]
        assert local.startswith("127.0.0.1:"), f"test server exposed beyond loopback: {local}"


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def child_pid(pid: int, needle: str) -> int:
    for p in descendants(pid):
        try:
            cmd = open(f"/proc/{p}/cmdline").read()
        except OSError:
            continue
        if needle in cmd and os.getpgid(p) == p:
            return p
    raise AssertionError(f"no child running {needle}")


def test_list_changes_reach_open_sessions_and_server_requests_reach_the_caller(warden, files_root):
    warden.cli("server", "add", "conf", "--", sys.executable, str(FIXTURE))
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("bot")
    warden.start()
    notes: list[str] = []
    asked: list[str] = []

    async def main():
        async def on_message(message):
            method = getattr(getattr(message, "root", message), "method", None)
            if method:
                notes.append(method)

        async def on_sampling(context, params):
            asked.append(params.messages[0].content.text)
            return mcp.types.CreateMessageResult(
                role="assistant", content=mcp.types.TextContent(type="text", text="a sampled answer"), model="test-model"
            )

        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(
            streamable_http_client(warden.url, http_client=http), mode="legacy",
            message_handler=on_message, sampling_callback=on_sampling,
        ) as client:
            before = {t.name for t in (await client.list_tools()).tools}
            assert "conf__added_later" not in before
            await client.call_tool("conf__test_trigger_tool_change", {})
            with anyio.fail_after(10):
                while "notifications/tools/list_changed" not in notes:
                    await anyio.sleep(0.05)
            # A tool a server adds later waits for an admin, on any server.
            with anyio.fail_after(10):
                while "added_later" not in warden.cli("tool", "quarantined").stdout:
                    await anyio.sleep(0.1)
            assert "conf__added_later" not in {t.name for t in (await client.list_tools()).tools}
            warden.cli("tool", "accept", "conf", "added_later", "--yes")
            with anyio.fail_after(10):
                while "conf__added_later" not in {t.name for t in (await client.list_tools()).tools}:
                    await anyio.sleep(0.05)
            r = await client.call_tool("conf__added_later", {})
            assert text_of(r) == ["I am new"]
            # A legacy server's own request (sampling) reaches the client whose call asked for it…
            r = await client.call_tool("ev__trigger-sampling-request", {"prompt": "say hi", "maxTokens": 10})
            assert len(asked) == 1 and asked[0].endswith("say hi") and "a sampled answer" in json.dumps([c.model_dump() for c in r.content])
            # …and so does a 2026-07-28 server's input_required, asked as a request.
            r = await client.call_tool("conf__test_sampling", {"prompt": "modern hi"})
            assert asked[-1] == "modern hi"
            assert text_of(r) == ["LLM response: a sampled answer"]

    anyio.run(main)
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--limit", "500").stdout.splitlines()]
    relayed = {(r["server"], r["tool"], r["agent"], r["outcome"]) for r in rows if r["kind"] == "server_request"}
    assert ("ev", "sampling/createMessage", "bot", "relayed") in relayed, relayed
    assert ("conf", "sampling/createMessage", "bot", "relayed") in relayed, relayed
    statuses = {(r["server"], r["outcome"]) for r in rows if r["kind"] == "server.status"}
    assert {("ev", "ready"), ("conf", "ready")} <= statuses, statuses


def test_a_server_gets_keychain_secrets_but_never_wardens_environment(warden):
    secret = "s3cr3t-" + os.urandom(8).hex()
    out = warden.cli("secret", "set", "demo-token", input=secret + "\n")
    assert "keychain:demo-token" in out.stdout
    warden.cli("server", "add", "ev", "--env", "DEMO_TOKEN=keychain:demo-token", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("bot")
    os.environ["WARDEN_PRIVATE_MARKER"] = "must-not-leak"
    try:
        warden.start()
    finally:
        del os.environ["WARDEN_PRIVATE_MARKER"]
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ev__get-env", "arguments": {}, "_meta": MODERN_META}}, token)
    env = json.loads(r.json()["result"]["content"][0]["text"])
    assert env["DEMO_TOKEN"] == secret
    assert "WARDEN_PRIVATE_MARKER" not in env, "the child does not inherit Warden's environment"
    assert set(env) <= {"DEMO_TOKEN", "PATH", "HOME", "LANG", "TMPDIR", "USER"}, sorted(env)
    # A kept secret passed as an ordinary argument is redacted from the record too.
    r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": secret}, "_meta": MODERN_META}}, token)
    assert secret in r.text, "the call itself is unchanged"
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--tool", "echo").stdout.splitlines()]
    stored_args = next(json.loads(r["arguments"]) for r in rows if r["kind"] == "tool_call.requested")
    assert stored_args["message"].startswith("[redacted:"), stored_args
    warden.stop()
    stored = b"".join(p.read_bytes() for p in warden.data_dir.rglob("*") if p.is_file())
    assert secret.encode() not in stored, "the secret is only in the keychain"
    assert b"keychain:demo-token" in (warden.data_dir / "config.toml").read_bytes()
    missing = warden.cli("server", "add", "ev2", "--env", "X=keychain:nope", "--", peer("mcp-server-everything"), "stdio")
    warden.start()
    ev2 = warden.wait_state("ev2", "failed")
    assert "warden secret set nope" in ev2["error"], ev2


def test_listen_streams_carry_only_what_the_agent_may_use(warden):
    """A 2026-07-28 `subscriptions/listen` stream hears about a server's tool
    list only when its agent may use something on that server."""
    import threading
    warden.cli("server", "add", "conf", "--", sys.executable, str(FIXTURE))
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    warden.cli("role", "add", "ev-only")
    warden.cli("grant", "ev-only", "ev", "echo", "allow")
    insider = warden.add_agent("insider")
    outsider = warden.add_agent("outsider", "ev-only")
    warden.start()
    heard: dict[str, list[str]] = {"insider": [], "outsider": []}
    body = {"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": True}, "_meta": MODERN_META}}

    def listen(who: str, token: str) -> None:
        h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
             "authorization": f"Bearer {token}", "mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen"}
        try:
            with httpx2.stream("POST", warden.url, content=json.dumps(body), headers=h, timeout=8) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        heard[who].append(json.loads(line[5:])["method"])
        except httpx2.HTTPError:
            pass

    threads = [threading.Thread(target=listen, args=a, daemon=True) for a in (("insider", insider), ("outsider", outsider))]
    for t in threads:
        t.start()
    deadline = time.time() + 5
    while time.time() < deadline and not all(heard.values()):
        time.sleep(0.1)
    assert all("notifications/subscriptions/acknowledged" in v for v in heard.values()), heard
    r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "conf__test_trigger_tool_change", "arguments": {}, "_meta": MODERN_META}}, insider)
    assert "added a tool" in r.text, r.text
    deadline = time.time() + 5
    while time.time() < deadline and "notifications/tools/list_changed" not in heard["insider"]:
        time.sleep(0.1)
    assert "notifications/tools/list_changed" in heard["insider"], heard
    time.sleep(0.5)
    assert "notifications/tools/list_changed" not in heard["outsider"], "an agent with nothing on conf hears nothing of it"


def test_concurrent_server_adds_all_survive_a_restart(warden):
    """Many `warden server add` at once, against a running gateway and with
    none running: every one is in config.toml and comes back after a restart."""
    from concurrent.futures import ThreadPoolExecutor

    def add_all(prefix: str) -> None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            outs = list(pool.map(lambda i: warden.cli("server", "add", f"{prefix}{i}", "--", sys.executable, str(FIXTURE), check=False), range(16)))
        for o in outs:
            assert o.returncode == 0 and "Added server" in o.stdout, (o.stdout, o.stderr)

    warden.start(settle=False)
    add_all("live")
    warden.stop()
    add_all("cold")
    warden.start(settle=False)
    names = {s["name"] for s in warden.servers()}
    assert names == {f"live{i}" for i in range(16)} | {f"cold{i}" for i in range(16)}, sorted(names)
