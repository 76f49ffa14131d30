"""Shared fixtures: a real `warden serve` on 127.0.0.1 with its own data
folder, real MCP servers from npm behind it, and agents with credentials."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import time
from pathlib import Path

import base64
import hashlib
import hmac
import struct

import httpx2
import pytest

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "tests" / "node_modules" / ".bin"
WARDEN = Path(os.environ.get("WARDEN_BIN", ROOT / "target" / "debug" / "warden"))

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def totp(secret_b32: str, at: float, step_offset: int = 0) -> str:
    """RFC 6238 with SHA-1, 6 digits, 30 s steps (what authenticator apps do)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int(at // 30) + step_offset
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


class Person:
    """A person with a local account, who can sign in as an app user would."""

    def __init__(self, warden: "Warden", name: str, password: str, enrollment: dict):
        self.warden, self.name, self.password = warden, name, password
        self.secret = enrollment["totp_secret"]
        self.recovery_codes = enrollment["recovery_codes"]
        self.last_step = -1

    def next_code(self) -> str:
        # Each TOTP step signs in once: use the next unused one within the
        # accepted window, as a person waiting for a fresh code would.
        now = time.time()
        step = max(int(now // 30), self.last_step + 1)
        if step > int(now // 30) + 1:
            time.sleep((step - 1) * 30 - now + 0.1)
            now = time.time()
        self.last_step = step
        return totp(self.secret, now, step - int(now // 30))

    def login(self, check: bool = True, code: str | None = None) -> subprocess.CompletedProcess:
        # The code follows the password on standard input, as a person
        # types it: never on the command line, which any process can read.
        out = self.warden.cli(
            "login", self.name, "--password-stdin", input=self.password + "\n" + (code or self.next_code()) + "\n", check=check
        )
        if out.returncode == 0:
            # The CLI keeps this person's session: when no Warden runs, its
            # commands open the records with this person's password.
            self.warden.signed_in = self
            self.warden.sso_signed_in = False
        return out


def peer(name: str) -> str:
    path = PEERS / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run .ci/setup (npm install in tests/)")
    return str(path)


class Warden:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        # How the binary is run: as this process's user, or (a test of the
        # boundary between OS users) through setpriv as another one.
        self.prefix: list[str] = []
        self.binary = WARDEN
        self.env: dict | None = None
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.admin: Person | None = None
        self.signed_in: Person | None = None
        # The CLI's session came from the identity provider (no password).
        self.sso_signed_in = False
        self.people: dict[str, Person] = {}

    def init_admin(self, name: str = "admin") -> Person:
        password = "test-" + os.urandom(9).hex()
        out = self.cli("init", "--admin", name, "--password-stdin", "--json", input=password + "\n")
        self.admin = Person(self, name, password, json.loads(out.stdout))
        self.people[name] = self.admin
        self.admin.login()
        return self.admin

    def add_person(self, name: str, *args: str) -> Person:
        password = "test-" + os.urandom(9).hex()
        invited = json.loads(self.cli("user", "add", name, "--json", *args).stdout)
        # The person enrols themselves with the admin's one-time code.
        out = self.cli("enrol", name, "--password-stdin", "--json", input=invited["code"] + "\n" + password + "\n")
        self.people[name] = Person(self, name, password, json.loads(out.stdout))
        return self.people[name]

    def signed_in_through_provider(self, stdout: str) -> None:
        """After `warden login --sso`: the CLI's session is now that of the
        person it names, whose own password (if they have one) unlocks."""
        m = re.search(r"Signed in as (\S+) \(", stdout)
        person = self.people.get(m.group(1)) if m else None
        if person:
            self.signed_in, self.sso_signed_in = person, False
        else:
            self.sso_signed_in = True

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def opens_records(self, args) -> bool:
        """Whether `warden ARGS` opens the records in its own process (and
        so asks for the password that unlocks them): every command when no
        Warden runs but those that bring a password of their own, and an
        export always."""
        if args[:2] == ("audit", "export"):
            return True
        return not self.running() and args[0] not in ("init", "login", "enrol", "unlock", "serve")

    def unlock_answer(self) -> str:
        """What the CLI asks for to unlock the records: the signed-in
        person's password, or (for a person who signs in only through the
        provider) the admin's name and password."""
        if self.sso_signed_in and self.admin:
            return self.admin.name + "\n" + self.admin.password + "\n"
        return self.signed_in.password + "\n" if self.signed_in else ""

    def unlock_line(self) -> str:
        """What a command that opens the records itself reads last."""
        return self.unlock_answer() if not self.running() else ""

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        if self.signed_in and args and self.opens_records(args):
            # The CLI opens the records itself and asks for the signed-in
            # person's password after the command's own lines, as a person
            # types it when asked.
            input = (input or "") + self.unlock_answer()
        out = subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            input=input,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"warden {' '.join(args)} failed: {out.stderr}")
        return out

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, str(self.binary), "--data-dir", str(self.data_dir), *args]

    def ensure_all_role(self) -> str:
        """A role that may use everything, for tests about other things."""
        roles = json.loads(self.cli("role", "list", "--json").stdout)
        if not any(r["name"] == "all" for r in roles):
            self.cli("role", "add", "all", "--description", "every tool of every server")
            # --explicit: high-risk tools too, without asking a person.
            self.cli("grant", "all", "*", "*", "allow", "--explicit")
        return "all"

    def add_agent(self, name: str, *roles: str) -> str:
        if not roles:
            roles = (self.ensure_all_role(),)
        args = [a for r in roles for a in ("--role", r)]
        out = self.cli("agent", "add", name, *args, "--json")
        return json.loads(out.stdout)["credential"]

    def start(self, *, settle: bool = True) -> None:
        self.stderr = open(self.data_dir / "serve.err", "w")
        self.proc = subprocess.Popen(
            self.argv("serve", "--listen", "127.0.0.1:0"),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            raise AssertionError(f"warden serve did not print its endpoint: {line!r}\n{self.log()}")
        self.url = line
        if self.signed_in and not self.sso_signed_in:
            # A Warden that just started is locked until a person unlocks it.
            self.cli("unlock", "--password-stdin", input=self.signed_in.password + "\n")
        if settle:
            self.wait_ready()

    def servers(self) -> list[dict]:
        return json.loads(self.cli("server", "list", "--json").stdout)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            states = [s["state"] for s in self.servers()]
            if all(s in ("ready", "failed", "blocked") for s in states):
                return
            time.sleep(0.2)
        raise AssertionError(f"servers did not settle: {self.servers()}")

    def wait_state(self, server: str, state: str, timeout: float = 60) -> dict:
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for s in self.servers():
                if s["name"] == server:
                    last = s
                    if s["state"] == state:
                        return s
            time.sleep(0.1)
        raise AssertionError(f"{server} never became {state}: {last}")

    def log(self) -> str:
        try:
            return (self.data_dir / "serve.err").read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("warden did not stop within 20 s of SIGTERM")

    def post(self, body, token: str | None, headers: dict | None = None, path: str = "/mcp") -> httpx2.Response:
        h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if token:
            h["authorization"] = f"Bearer {token}"
        if isinstance(body, dict) and "io.modelcontextprotocol/protocolVersion" in body.get("params", {}).get("_meta", {}):
            # What a 2026-07-28 client sends with every request.
            params = body["params"]
            h["mcp-protocol-version"] = params["_meta"]["io.modelcontextprotocol/protocolVersion"]
            h["mcp-method"] = body["method"]
            name = params.get("uri") if body["method"] == "resources/read" else params.get("name")
            if name is not None and body["method"] in ("tools/call", "prompts/get", "resources/read"):
                h["mcp-name"] = name
        h.update(headers or {})
        base = self.url.removesuffix("/mcp")
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx2.post(base + path, content=data, headers=h, timeout=30)


def legacy_session(warden, token: str):
    """A 2025-11-25 session spoken by hand, so a test can send params no SDK would."""
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "authorization": f"Bearer {token}", "mcp-protocol-version": "2025-11-25"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "by-hand", "version": "1"}}}
    r = httpx2.post(warden.url, content=json.dumps(init), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    headers["mcp-session-id"] = r.headers["mcp-session-id"]
    httpx2.post(warden.url, content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), headers=headers, timeout=30)

    def post(body: dict) -> dict:
        r = httpx2.post(warden.url, content=json.dumps(body), headers=headers, timeout=30)
        if not r.headers.get("content-type", "").startswith("text/event-stream"):
            return r.json()
        messages = [json.loads(l[5:]) for l in r.text.splitlines() if l.startswith("data:") and l[5:].strip()]
        return next(m for m in messages if "id" in m)

    return post


@pytest.fixture
def warden(tmp_path: Path):
    w = Warden(tmp_path / "data")
    w.data_dir.mkdir()
    w.init_admin()
    yield w
    w.stop()


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the filesystem server\n")
    return root
