"""Approving needs the person. With Warden running, an approval or a change of
policy that arrives from the command line (the control socket, which any
process of the person's OS user can reach) goes through only when the
system confirms it is the person: polkit asks for their OS password, every
time, through an authentication agent — here pkttyagent in a terminal, as a
person at a shell has it.

Warden and its CLI run as an ordinary test user (root is authorized by
polkit without a question, so a test as root would prove nothing), against
Debian's polkitd on the system bus (.ci/with-polkit starts a private one
where the machine has none)."""

from __future__ import annotations

import json
import os
import pty
import pwd
import secrets
import select
import shutil
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import pytest

from conftest import ROOT, WARDEN, Warden
from test_approvals import call_later, log, pending, result_of, wait_pending

USER = "warden-presence"
ACTION = "dev.warden.app.confirm"


def as_user(user: pwd.struct_passwd) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]


def polkit_answers_for(user: pwd.struct_passwd) -> str:
    """What polkit says about a process of `user` asking for Warden's action."""
    out = subprocess.run([*as_user(user), "sh", "-c", f'exec pkcheck --action-id {ACTION} --process $$'],
                         capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


@pytest.fixture
def person_os_account():
    if os.geteuid() != 0:
        raise AssertionError("this test runs Warden as a test user and needs root to make one")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
    password = "os-" + secrets.token_urlsafe(15)
    subprocess.run(["chpasswd"], input=f"{USER}:{password}\n", text=True, check=True)
    yield pwd.getpwnam(USER), password
    subprocess.run(["passwd", "--lock", USER], capture_output=True)


@pytest.fixture
def shared_place():
    place = Path(tempfile.mkdtemp(prefix="warden-presence-", dir="/tmp"))
    place.chmod(0o755)
    yield place
    shutil.rmtree(place, ignore_errors=True)


class Session:
    """The test user's own keychain, on a session bus of their own, for as
    long as the test runs."""

    def __init__(self, user: pwd.struct_passwd, place: Path):
        keychain = place / "with-keychain"
        shutil.copy(ROOT / ".ci" / "with-keychain", keychain)
        self.env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": user.pw_dir, "USER": user.pw_name,
                    "LOGNAME": user.pw_name, "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [*as_user(user), "bash", str(keychain), "sh", "-c", 'echo "$DBUS_SESSION_BUS_ADDRESS"; exec sleep 900'],
            env=self.env, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self.proc.stdout is not None
        address = self.proc.stdout.readline().strip()
        assert address.startswith("unix:"), f"the test user's session bus did not start: {address!r}"
        self.env = {**self.env, "DBUS_SESSION_BUS_ADDRESS": address}

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, 15)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=20)


def in_terminal(warden: Warden, *args: str, answer: str | None, timeout: float = 60) -> tuple[int, str]:
    """Runs the CLI in a terminal of its own (a pty), answers the system's
    password prompt with `answer` when it appears, and returns the exit code
    and everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, as the test user, on the terminal
        try:
            os.execvpe(warden.prefix[0], [*warden.prefix, str(warden.binary), "--data-dir", str(warden.data_dir), *args],
                       warden.env)
        finally:
            os._exit(127)
    shown, answered = b"", False
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if fd in ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and not answered and b"Password:" in shown:
                # The agent turns echo off with TCSAFLUSH, which drops what
                # was typed before: answer once it has.
                quiet_by = time.time() + 10
                while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < quiet_by:
                    time.sleep(0.05)
                os.write(fd, (answer + "\n").encode())
                answered = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_approving_from_the_command_line_needs_the_persons_os_password(person_os_account, shared_place):
    user, os_password = person_os_account
    assert "requires authentication" in polkit_answers_for(user), (
        "polkit must answer on the system bus with Warden's action installed (run under .ci/with-polkit): "
        + polkit_answers_for(user))
    binary = shared_place / "warden"
    shutil.copy(WARDEN, binary)
    server = shared_place / "notes_server.py"
    shutil.copy(ROOT / "tests" / "servers" / "notes_server.py", server)
    work = shared_place / "work"
    work.mkdir()
    os.chown(work, user.pw_uid, user.pw_gid)
    notes = work / "notes.txt"

    session = Session(user, shared_place)
    warden = Warden(work / "data")
    warden.prefix, warden.binary, warden.env = as_user(user), binary, session.env
    try:
        warden.init_admin("ada")
        warden.cli("server", "add", "notes", "--", "/usr/bin/python3", str(server), str(notes))
        warden.cli("role", "add", "writer")
        warden.cli("grant", "writer", "notes", "*", "allow")
        token = json.loads(warden.cli("agent", "add", "ada-bot", "--role", "writer", "--json").stdout)["credential"]
        warden.start()
        grants_before = warden.cli("role", "list", "--json").stdout

        call = call_later(warden, token, "notes__add_note", {"text": "approved by ada"})
        [req] = wait_pending(warden)
        assert (req["agent"], req["tool"], req["risk"]) == ("ada-bot", "add_note", "high"), req

        # A process of ada's with her signed-in session and no terminal: no
        # one can be asked, so nothing is approved.
        quiet = warden.cli("approvals", "approve", req["id"], check=False)
        assert quiet.returncode != 0 and "did not confirm it is you" in quiet.stderr, quiet.stderr
        # A change of policy the same way: refused, nothing changes.
        widen = warden.cli("grant", "writer", "notes", "*", "allow", "--explicit", check=False)
        assert widen.returncode != 0 and "did not confirm it is you" in widen.stderr, widen.stderr
        assert warden.cli("role", "list", "--json").stdout == grants_before

        # In a terminal the system asks for the password; a wrong one
        # approves nothing.
        code, shown = in_terminal(warden, "approvals", "approve", req["id"], answer="not-" + os_password)
        assert "Password:" in shown and "Warden: confirm it is you" in shown, shown
        assert code != 0 and "did not confirm it is you" in shown, shown
        assert "not-" + os_password not in shown, "the password was typed with echo on"
        assert [p["id"] for p in pending(warden)] == [req["id"]], "the call still waits"
        assert not notes.exists(), "the server received nothing"

        # The person's own password, typed at the prompt: approved, and the
        # call goes through.
        code, shown = in_terminal(warden, "approvals", "approve", req["id"], answer=os_password)
        assert code == 0, shown
        result, _ = result_of(call)
        assert not result.get("isError"), result
        assert notes.read_text() == "approved by ada\n"

        rows = log(warden, "--limit", "200")
        refused = [json.loads(r["detail"]) for r in rows if r["kind"] == "access.refused"]
        assert [r["why"] for r in refused].count("presence not confirmed") == 3, refused
        decided = [(r.get("outcome"), r.get("approver")) for r in rows if r["kind"] == "approval.decided"]
        assert decided == [("approved", "ada")], decided
    finally:
        warden.stop()
        session.close()
