"""Faults and abuse: upstreams that hang, crawl, send garbage, flood or keep
crashing; clients that trickle headers or sit idle by the thousand; bodies
nested a hundred thousand deep or with keys given twice. Warden stays
responsive to everything else, keeps its memory bounded, says what state a
server is in, and refuses bad input with a clear error and no activity."""

from __future__ import annotations

import json
import resource
import socket
import sys
import threading
import time
from pathlib import Path

import httpx2

from conftest import MODERN_META, ROOT, peer

BAD = ROOT / "tests" / "servers" / "misbehaving_server.py"


def call(warden, token: str, tool: str, args: dict | None = None, timeout: float = 30) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": args or {}, "_meta": MODERN_META}}
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
         "authorization": f"Bearer {token}", "mcp-protocol-version": "2026-07-28",
         "mcp-method": "tools/call", "mcp-name": tool}
    r = httpx2.post(warden.url, content=json.dumps(body), headers=h, timeout=timeout)
    return r.json()


def echo_works(warden, token: str, times: int = 5) -> None:
    for i in range(times):
        r = call(warden, token, "ev__echo", {"message": f"still here {i}"})
        assert r["result"]["content"][0]["text"] == f"Echo: still here {i}", r


def activity_count(warden) -> int:
    return len(warden.cli("log", "--json", "--limit", "100000").stdout.splitlines())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def with_bad(warden, mode: str, **env: str) -> str:
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    extra = [a for k, v in env.items() for a in ("--env", f"{k}={v}")]
    warden.cli("server", "add", "bad", *extra, "--", sys.executable, str(BAD), mode)
    token = warden.add_agent("tester")
    warden.start()
    return token


def test_a_hung_upstream_holds_up_nothing_else_and_its_call_ends_with_a_clear_error(warden):
    warden.data_dir.joinpath("config.toml").write_text("[gateway]\ncall_timeout_secs = 5\n")
    token = with_bad(warden, "hang")
    hung: dict = {}
    t = threading.Thread(target=lambda: hung.update(call(warden, token, "bad__act", timeout=60)))
    t.start()
    time.sleep(0.5)
    echo_works(warden, token, 20)
    assert t.is_alive(), "the hung call is still waiting while the others went through"
    t.join(30)
    assert not t.is_alive(), "the call timeout ends a call the server never answers"
    said = json.dumps(hung)
    assert "error" in hung or hung.get("result", {}).get("isError"), said
    assert "5" in said and ("time" in said.lower() or "answer" in said.lower()), said
    echo_works(warden, token)


def test_a_slow_upstream_answers_and_others_are_not_kept_waiting(warden):
    token = with_bad(warden, "slow", SLOW_SECONDS="3")
    slow: dict = {}
    t = threading.Thread(target=lambda: slow.update(call(warden, token, "bad__act")))
    t.start()
    echo_works(warden, token, 10)
    assert t.is_alive(), "the slow call was still running while ten others finished"
    t.join(30)
    assert slow["result"]["content"][0]["text"] == "slow done", slow


def test_garbage_from_an_upstream_is_skipped_and_the_server_keeps_working(warden):
    token = with_bad(warden, "garbage")
    r = call(warden, token, "bad__act")
    # Invalid UTF-8 on its output ends that connection: the call gets an
    # error naming the server, and Warden starts the server again.
    assert r["error"]["code"] == -32603 and '"bad"' in r["error"]["message"], r
    assert warden.proc.poll() is None, "Warden is still running"
    echo_works(warden, token)
    assert {s["name"]: s for s in warden.servers()}["ev"]["state"] == "ready"
    back = warden.wait_state("bad", "ready", timeout=30)
    assert back["restarts"] >= 1, back


def test_a_flood_of_notifications_keeps_memory_bounded(warden):
    token = with_bad(warden, "flood", FLOOD="200000")
    before = rss_kib(warden.proc.pid)
    r = call(warden, token, "bad__act", timeout=120)
    assert r["result"]["content"][0]["text"] == "flood done", r
    echo_works(warden, token)
    grown = rss_kib(warden.proc.pid) - before
    # 200,000 notifications of ~300 bytes are 60 MB on the wire.
    assert grown < 50 * 1024, f"Warden grew by {grown // 1024} MiB while a server flooded it"


def test_a_flood_to_a_client_that_never_reads_its_stream_keeps_memory_bounded(warden):
    # Paced, so that Warden keeps up with the server and the notifications
    # really pile up in front of the client.
    token = with_bad(warden, "flood", FLOOD="200000", FLOOD_BATCH="500")
    port = int(warden.url.split(":")[2].split("/")[0])
    # A legacy session (2025-06-18) whose GET stream is opened and never read:
    # every notification the server sends unasked is queued for it.
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
         "authorization": f"Bearer {token}"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "never-reads", "version": "1"}}}
    r = httpx2.post(warden.url, content=json.dumps(init), headers=h, timeout=30)
    sid = r.headers["mcp-session-id"]
    h2 = {**h, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx2.post(warden.url, content=json.dumps(note), headers=h2, timeout=30).status_code == 202
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", port))
    stuck.sendall(
        f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\nMcp-Session-Id: {sid}\r\n"
        f"Mcp-Protocol-Version: 2025-06-18\r\n\r\n".encode())
    stuck.settimeout(10)
    assert stuck.recv(15) == b"HTTP/1.1 200 OK", "the GET stream opened"
    try:
        before = rss_kib(warden.proc.pid)
        r = call(warden, token, "bad__act", timeout=120)
        assert r["result"]["content"][0]["text"] == "flood done", r
        echo_works(warden, token)
        grown = rss_kib(warden.proc.pid) - before
        # 200,000 notifications of ~300 bytes: 60 MB if they were all kept.
        assert grown < 30 * 1024, f"Warden grew by {grown // 1024} MiB holding a stuck client's notifications"
        assert "reads its event stream slower" in warden.log(), "the dropped notifications are logged"
    finally:
        stuck.close()


def test_a_server_that_keeps_crashing_is_reported_and_the_others_work(warden):
    token = with_bad(warden, "crash")
    deadline = time.time() + 60
    bad = None
    while time.time() < deadline:
        bad = {s["name"]: s for s in warden.servers()}["bad"]
        if bad["state"] == "failed" and bad["restarts"] >= 1:
            break
        time.sleep(0.3)
    assert bad and bad["state"] == "failed" and bad["restarts"] >= 1, bad
    assert bad.get("error"), "the state says why"
    echo_works(warden, token)
    r = call(warden, token, "bad__act")
    assert "error" in r and "bad" in r["error"]["message"], r


def test_slow_and_idle_clients_cannot_starve_the_endpoint(warden):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("tester")
    warden.start()
    port = int(warden.url.split(":")[2].split("/")[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    before = rss_kib(warden.proc.pid)
    idle, trickling = [], []
    try:
        # Thousands of connections that never send a byte.
        for _ in range(2000):
            s = socket.create_connection(("127.0.0.1", port))
            idle.append(s)
        # Slowloris: headers that never end, a byte at a time.
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            trickling.append(s)
        for _ in range(3):
            for s in trickling:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            echo_works(warden, token, 2)
            time.sleep(1)
        grown = rss_kib(warden.proc.pid) - before
        assert grown < 100 * 1024, f"2,200 idle and slow connections cost {grown // 1024} MiB"
        # Clients that never finish their headers are cut off.
        deadline = time.time() + 40
        open_ones = list(trickling)
        while open_ones and time.time() < deadline:
            still = []
            for s in open_ones:
                s.settimeout(0.05)
                try:
                    if s.recv(1024) == b"":
                        continue
                    continue
                except socket.timeout:
                    still.append(s)
                except OSError:
                    continue
            open_ones = still
            time.sleep(0.5)
        assert not open_ones, f"{len(open_ones)} slowloris connections were never closed"
        echo_works(warden, token)
    finally:
        for s in idle + trickling:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_deeply_nested_and_duplicate_key_bodies_are_refused_and_leave_no_trace(warden):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("tester")
    warden.start()
    before = activity_count(warden)
    nested = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":' + b"[" * 100_000 + b"]" * 100_000 + b"}}}"
    r = warden.post(nested, token)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700, r.text[:300]
    assert "deep" in r.json()["error"]["message"] or "recursion" in r.json()["error"]["message"], r.text[:300]
    for dup in (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"ev__echo"}}',
        b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ev__echo","name":"ev__add","arguments":{"message":"x"}}}',
        b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":"a","message":"b"}}}',
    ):
        r = warden.post(dup, token)
        assert r.status_code == 400, (dup, r.status_code, r.text)
        assert r.json()["error"]["code"] == -32600 and "duplicate" in r.json()["error"]["message"], r.text
    after = activity_count(warden)
    assert after == before, "refused bodies leave no activity row"
    echo_works(warden, token)
