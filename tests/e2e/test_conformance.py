"""The MCP conformance suite and the MCP Inspector CLI, run through Warden.

The suite cannot send a credential, so it speaks to Warden through
auth_forwarder.py, which adds the agent's bearer token and changes nothing
else. The servers behind Warden are the conformance fixture (written on the
official Python SDK, a 2026-07-28 server) and server-everything (legacy)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, peer
from test_gateway import free_port, wait_port

NODE22_BIN = ROOT / "tests" / "node_modules" / "node" / "bin"
BIN = ROOT / "tests" / "node_modules" / ".bin"
FIXTURE = ROOT / "tests" / "servers" / "conformance_server.py"


def node_env() -> dict:
    if not (NODE22_BIN / "node").exists():
        raise RuntimeError("Node 22 is missing from tests/node_modules: run .ci/setup")
    return dict(os.environ, PATH=f"{NODE22_BIN}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def through_forwarder(warden):
    warden.cli("server", "add", "conf", "--", sys.executable, str(FIXTURE))
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("suite")
    warden.start()
    states = {s["name"]: s["state"] for s in warden.servers()}
    assert states == {"conf": "ready", "ev": "ready"}, (states, warden.log())
    era = {s["name"]: s["era"]["era"] for s in warden.servers()}
    assert era == {"conf": "modern", "ev": "legacy"}, era
    port = free_port()
    fwd = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("auth_forwarder.py")), str(port), warden.url.removesuffix("/mcp")],
        stdin=subprocess.PIPE, text=True,
    )
    assert fwd.stdin is not None
    fwd.stdin.write(token + "\n")
    fwd.stdin.close()
    try:
        wait_port(port)
        warden.token = token
        yield f"http://127.0.0.1:{port}"
    finally:
        fwd.terminate()
        fwd.wait(timeout=10)


def conformance(url: str, *args: str) -> tuple[int, int, str]:
    out = subprocess.run(
        [str(BIN / "conformance"), "server", "--url", url, *args],
        capture_output=True, text=True, timeout=600, env=node_env(),
    )
    text = out.stdout + out.stderr
    totals = re.findall(r"Total: (\d+) passed, (\d+) failed", text) or re.findall(r"Passed: (\d+)/\d+, (\d+) failed", text)
    assert totals, f"the suite printed no totals:\n{text[-3000:]}"
    passed = sum(int(p) for p, _ in totals)
    failed = sum(int(f) for _, f in totals)
    summary = "\n".join(l for l in text.splitlines() if l.startswith(("✓", "✗", "Total")))
    print(f"conformance {' '.join(args) or '(active suite)'} at {url}:\n{summary or text[-500:]}")
    return passed, failed, text


def test_conformance_server_suite_through_the_single_server_endpoint(through_forwarder):
    passed, failed, text = conformance(f"{through_forwarder}/servers/conf/mcp")
    assert failed == 0, text[-4000:]
    assert passed >= 70, f"fewer checks ran than expected ({passed})"


def test_conformance_2026_07_28_scenarios_through_the_single_server_endpoint(through_forwarder):
    passed, failed, text = conformance(f"{through_forwarder}/servers/conf/mcp", "--spec-version", "2026-07-28")
    assert failed == 0, text[-4000:]
    stateless_passed, stateless_failed, text = conformance(
        f"{through_forwarder}/servers/conf/mcp", "--scenario", "server-stateless"
    )
    assert stateless_failed == 0, text[-4000:]


@pytest.mark.parametrize(
    "scenario",
    [
        "dns-rebinding-protection",
        "server-initialize",
        "server-session-lifecycle",
        "ping",
        "tools-list",
        "http-header-validation",
        "caching",
        "server-sse-multiple-streams",
        "sep-2164-resource-not-found",
    ],
)
def test_conformance_transport_scenarios_on_the_aggregated_endpoint(through_forwarder, scenario):
    passed, failed, text = conformance(f"{through_forwarder}/mcp", "--scenario", scenario)
    assert failed == 0 and passed > 0, text[-4000:]


def inspector(*args: str) -> str:
    out = subprocess.run(
        [str(BIN / "mcp-inspector"), "--cli", *args],
        capture_output=True, text=True, timeout=120, env=node_env(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_inspector_cli_lists_and_calls_like_a_direct_connection(through_forwarder, warden):
    import json

    # The Inspector can send the credential itself: it talks to Warden directly.
    auth = ["--header", f"Authorization: Bearer {warden.token}"]
    listed = json.loads(inspector(warden.url, *auth, "--method", "tools/list"))
    names = {t["name"] for t in listed["tools"]}
    assert {"ev__echo", "conf__test_simple_text"} <= names
    via = json.loads(inspector(warden.url, *auth, "--method", "tools/call", "--tool-name", "ev__echo", "--tool-arg", "message=inspected"))
    direct = json.loads(inspector(peer("mcp-server-everything"), "stdio", "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=inspected"))
    assert via == direct == {"content": [{"type": "text", "text": "Echo: inspected"}]}
