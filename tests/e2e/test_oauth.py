"""Warden as an MCP authorization client: the conformance suite's client
authorization scenarios, and signing in to a real OAuth-protected server."""

from __future__ import annotations

import re
import subprocess

from conftest import ROOT
from test_conformance import BIN, node_env

CLIENT = ROOT / "target" / "debug" / "warden-oauth-conformance"

# Scenarios outside the default suite: the 2026-07-28 ones and the
# 2025-03-26 back-compatibility ones, run one by one.
EXTRA = ["resource-mismatch", "offline-access-scope", "offline-access-not-supported",
         "authorization-server-migration", "iss-supported", "iss-not-advertised", "iss-supported-missing",
         "iss-wrong-issuer", "iss-unexpected", "iss-normalized", "metadata-issuer-mismatch",
         "2025-03-26-oauth-metadata-backcompat", "2025-03-26-oauth-endpoint-fallback"]


def conformance(*args: str) -> str:
    if not CLIENT.exists():
        raise AssertionError(f"{CLIENT} is missing: cargo build --workspace")
    out = subprocess.run([str(BIN / "conformance"), "client", "--command", str(CLIENT), *args],
                         env=node_env(), capture_output=True, text=True, timeout=300, cwd=ROOT / "tests")
    return out.stdout + out.stderr


def test_the_conformance_suites_client_authorization_scenarios_pass():
    for args in (["--suite", "auth"], ["--suite", "auth", "--spec-version", "2026-07-28"]):
        text = conformance(*args)
        total = re.search(r"Total: (\d+) passed, (\d+) failed, (\d+) warnings", text)
        assert total, text[-3000:]
        passed, failed, warnings = map(int, total.groups())
        print(args, total.group(0))
        assert passed >= 200 and failed == 0, text[-3000:]
        # The one warning: Warden has no client ID metadata document URL to offer.
        assert warnings == 0 or (warnings == 1 and re.search(r"auth/basic-cimd: \d+ passed, 0 failed, 1 warnings", text)), text[-3000:]
    for s in EXTRA:
        text = conformance("--scenario", f"auth/{s}")
        m = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", text)
        assert m and m.group(1) == m.group(2) and m.group(3) == "0", (s, text[-2000:])


import json
import os
import subprocess as sp
import time
from pathlib import Path

import httpx2
import pytest

from conftest import MODERN_META
from test_gateway import free_port

OAUTH_SERVER = ROOT / "tests" / "servers" / "oauth_server.mjs"


@pytest.fixture
def protected_server():
    """Starts oauth_server.mjs (TypeScript SDK) on 127.0.0.1; yields a
    function that starts one more, with `--any` for one that accepts any token."""
    procs = []

    def start(*flags: str) -> str:
        port = free_port()
        p = sp.Popen(["node", str(OAUTH_SERVER), str(port), *flags], env=node_env(), cwd=ROOT / "tests",
                     stdout=sp.PIPE, stderr=sp.STDOUT, text=True)
        procs.append(p)
        line = p.stdout.readline()
        assert line.startswith("listening"), line + (p.stdout.read() if p.poll() is not None else "")
        return f"http://localhost:{port}"

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def keychain_items() -> str:
    """What the Secret Service holds for Warden (attributes only)."""
    out = sp.run(["secret-tool", "search", "--all", "service", "warden"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def secret_value(account: str) -> str:
    out = sp.run(["secret-tool", "lookup", "service", "warden", "username", account], capture_output=True, text=True, timeout=30)
    return out.stdout


def sign_in(warden, name: str) -> str:
    """Runs `warden server login NAME` with no browser and follows the
    authorization redirect to Warden's loopback listener, as a browser would."""
    p = sp.Popen([str(warden_bin()), "--data-dir", str(warden.data_dir), "server", "login", name],
                 env=dict(os.environ, WARDEN_BROWSER="none"), stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    url = None
    lines = []
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stdout.readline()
        lines.append(line)
        if line.startswith("http"):
            url = line.strip()
            break
        if not line and p.poll() is not None:
            break
    assert url, "".join(lines) + p.stderr.read()
    r = httpx2.get(url, follow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), r.text
    back = httpx2.get(r.headers["location"], timeout=30)
    assert back.status_code == 200 and "Signed in" in back.text, back.text
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, "".join(lines) + out + err
    return "".join(lines) + out


def warden_bin() -> Path:
    from conftest import WARDEN
    return WARDEN


def call(warden, token: str, tool: str) -> dict:
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}, "_meta": MODERN_META}}, token)
    return r.json()


def test_signing_in_to_a_protected_server_keeps_tokens_in_the_keychain_and_refreshes_them(warden, protected_server):
    base = protected_server()
    warden.cli("server", "add", "prot", "--url", f"{base}/mcp")
    warden.cli("server", "trust", "prot")
    token = warden.add_agent("bot")
    warden.start()
    state = warden.wait_state("prot", "failed")
    assert "warden server login prot" in state["error"], state

    out = sign_in(warden, "prot")
    assert "Signed in to prot. Granted: mcp:tools" in out, out
    warden.wait_state("prot", "ready")
    result = call(warden, token, "prot__whoami")["result"]
    assert result["content"][0]["text"] == "hello from the protected server", result

    # The tokens are in the OS keychain, and nowhere else.
    items = keychain_items()
    account = next(l.split("=", 1)[1].strip() for l in items.splitlines() if l.startswith("attribute.username") and "/oauth/prot/" in l)
    stored = json.loads(secret_value(account))
    access, refresh = stored["tokens"]["access_token"], stored["tokens"]["refresh_token"]
    assert len(access) > 20 and len(refresh) > 20
    for f in [*warden.data_dir.rglob("*")]:
        if f.is_file():
            data = f.read_bytes()
            assert access.encode() not in data and refresh.encode() not in data, f"a token leaked into {f}"
    auth = json.loads(warden.cli("server", "auth", "--json").stdout)
    assert auth[0]["issuer"] == f"{base}/" and auth[0]["client_kind"] == "dynamic" and auth[0]["scopes"] == "mcp:tools"

    # The server expires every token: the next call is refreshed transparently.
    assert httpx2.post(f"{base}/test/expire", timeout=10).json()["expired"] >= 1
    result = call(warden, token, "prot__whoami")["result"]
    assert result["content"][0]["text"] == "hello from the protected server", result
    assert httpx2.get(f"{base}/test/stats", timeout=10).json()["refreshes"] == 1
    renewed = json.loads(secret_value(account))["tokens"]
    assert renewed["access_token"] != access and renewed["refresh_token"] != refresh, "rotated"
    assert json.loads(warden.cli("server", "auth", "--json").stdout)[0]["last_refresh_at_us"]

    # The probe rates it as enforcing; a server that takes any token is not.
    report = json.loads(warden.cli("server", "probe", "prot", "--json").stdout)
    assert report["verdict"] == "enforcing", report
    assert all(c["passed"] and c["proper"] for c in report["checks"]), report
    loose = protected_server("--any")
    warden.cli("server", "add", "loose", "--url", f"{loose}/mcp")
    report = json.loads(warden.cli("server", "probe", "loose", "--json").stdout)
    assert report["verdict"] == "not enforcing", report
    assert report["checks"][0]["passed"] and not report["checks"][1]["passed"]
    shown = warden.cli("server", "probe", "loose").stdout
    assert "WARNING: loose accepted a request it should have refused" in shown
    verdicts = {s["name"]: s["probe"] for s in warden.servers()}
    assert verdicts == {"prot": "enforcing", "loose": "not enforcing"}, verdicts

    # Signing out revokes and forgets; calls then say to sign in.
    warden.cli("server", "logout", "prot")
    assert "/oauth/prot/" not in keychain_items()
    state = warden.wait_state("prot", "failed")
    assert "warden server login prot" in state["error"]
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    kinds = [r["kind"] for r in rows]
    for k in ("server.signed_in", "server.probed", "server.signed_out"):
        assert k in kinds
    # This server is plain http on this machine: RFC 7009 revokes over https
    # only, so the tokens were forgotten here, and the row says why.
    out = json.loads(next(r for r in rows if r["kind"] == "server.signed_out")["detail"])
    assert out["revoked"] is False and "plain http" in out["not_revoked"], out


def test_plain_http_and_metadata_addresses_are_refused(warden):
    out = warden.cli("server", "add", "far", "--url", "http://example.com/mcp", check=False)
    assert out.returncode != 0 and "https" in out.stderr, out.stderr


EXAMPLE = ROOT / "tests" / "node_modules" / "@modelcontextprotocol" / "sdk" / "dist" / "esm" / "examples" / "server" / "simpleStreamableHttp.js"
LOOPBACK = ROOT / "tests" / "e2e" / "loopback.cjs"


def test_the_typescript_sdks_oauth_example_server(warden):
    """The SDK's own example (`simpleStreamableHttp.js --oauth`, its auth
    server on a second port): sign in, call a tool, probe. The example does
    not implement refresh, so the refresh test above uses oauth_server.mjs."""
    mcp_port, auth_port = free_port(), free_port()
    env = dict(node_env(), MCP_PORT=str(mcp_port), MCP_AUTH_PORT=str(auth_port), NODE_OPTIONS=f"--require {LOOPBACK}")
    p = sp.Popen(["node", str(EXAMPLE), "--oauth"], env=env, cwd=ROOT / "tests", stdout=sp.PIPE, stderr=sp.STDOUT, text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx2.get(f"http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp", timeout=2)
                httpx2.get(f"http://127.0.0.1:{auth_port}/.well-known/oauth-authorization-server", timeout=2)
                break
            except httpx2.HTTPError:
                time.sleep(0.2)
        warden.cli("server", "add", "example", "--url", f"http://localhost:{mcp_port}/mcp")
        token = warden.add_agent("bot")
        warden.start()
        out = sign_in(warden, "example")
        assert f"Signing in with http://localhost:{auth_port}/" in out, out
        warden.wait_state("example", "ready")
        r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "example__greet", "arguments": {"name": "Warden"}, "_meta": MODERN_META}}, token)
        assert r.json()["result"]["content"][0]["text"] == "Hello, Warden!", r.text
        report = json.loads(warden.cli("server", "probe", "example", "--json").stdout)
        assert report["verdict"] == "enforcing", report
    finally:
        p.terminate()
        p.wait(timeout=10)
