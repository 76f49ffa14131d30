"""The attacker runs as you: a process of the person's own OS user, which
knows no password and no code, finds the person's signed-in session and tries
to widen what agents may do with it. Every attempt must be refused, logged,
and change nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess

from conftest import peer


def later(warden, minutes: int = 6) -> None:
    """The session was opened with a code, but the CLI runs some minutes
    later (under faketime): that code is past. (Editing the session's row
    instead is what an attacker does, and is refused outright.)"""
    warden.prefix = ["faketime", "-f", f"+{minutes}m"]


def snapshot(warden) -> dict:
    def listing(*args: str):
        return json.loads(warden.cli(*args, "--json").stdout)

    agents = listing("agent", "list")
    for a in agents:
        a.pop("last_used_us", None)
    return {"people": listing("user", "list"), "agents": agents, "roles": listing("role", "list")}


def test_a_session_whose_code_is_stale_cannot_grant_power(warden, files_root):
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    warden.cli("role", "add", "dev", "--description", "what developers' agents may do")
    warden.cli("grant", "dev", "fs", "read_*", "allow")
    warden.add_agent("bot", "dev")
    mia = warden.add_person("mia")
    warden.cli("user", "disable", "mia")
    warden.cli("secret", "set", "api-key", input="kept-" + mia.password + "\n")
    before = snapshot(warden)
    rows_before = len(warden.cli("log", "--json", "--limit", "500").stdout.splitlines())

    later(warden)
    attempts = [
        (("user", "add", "eve", "--admin"), None),
        (("user", "reset", "mia"), None),
        (("user", "enable", "mia"), None),
        (("user", "allow-role", "mia", "dev"), None),
        (("grant", "dev", "fs", "write_file", "allow"), None),
        (("grant", "dev", "fs", "*", "allow", "--explicit"), None),
        (("agent", "add", "bot2", "--role", "dev"), None),
        (("agent", "add", "mia-bot", "--owner", "mia"), None),
        (("agent", "rotate", "bot"), None),
        (("audit", "prune", "--keep-rows", "1"), None),
        (("secret", "set", "api-key"), "replaced\n"),
        (("secret", "remove", "api-key"), None),
        (("server", "remove", "fs"), None),
        (("server", "add", "remote", "--url", "http://127.0.0.1:9/mcp"), None),
        (("revoke-grant", "dev", "fs", "read_*"), None),
        (("grant", "dev", "fs", "delete_*", "ask"), None),
        (("role", "remove", "dev"), None),
    ]
    for args, stdin in attempts:
        out = warden.cli(*args, check=False, input=stdin)
        assert out.returncode != 0, f"warden {' '.join(args)} went through on a stale second factor"
        assert "confirm it is you" in out.stderr, (args, out.stderr)
    warden.prefix = []

    assert snapshot(warden) == before, "a refused change changed something"
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--limit", "500").stdout.splitlines()]
    assert len(rows) >= rows_before, "nothing was pruned"
    refused = [json.loads(r["detail"]) for r in rows if r["kind"] == "access.refused"]
    assert len([r for r in refused if r["why"] == "no recent second factor"]) == len(attempts), refused
    assert "intact" in warden.cli("audit", "verify").stdout

    # The person, with their password and a code of their own, does it in
    # one step (no Warden runs, so this process opens the sealed secret).
    warden.cli("confirm", "--password-stdin", input=warden.admin.password + "\n" + warden.admin.next_code() + "\n")
    warden.cli("user", "enable", "mia")
    assert {p["name"]: p["status"] for p in snapshot(warden)["people"]}["mia"] == "active"


def every_keychain_secret() -> list[str]:
    """What `secret-tool search --all service warden` shows a process of this user."""
    out = subprocess.run(["secret-tool", "search", "--all", "--unlock", "service", "warden"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 or "secret = " in out.stdout, out.stderr
    return [line.split(" = ", 1)[1] for line in out.stdout.splitlines() if line.startswith("secret = ")]


def codes_from(text: str, at: float) -> list[str]:
    """Every code a value could make if it were an authenticator secret."""
    from conftest import totp

    found = []
    for candidate in {text, text.upper(), *text.split("$")}:
        try:
            found.append(totp(candidate, at))
        except Exception:
            pass
    return found


def test_nothing_a_process_of_yours_can_read_makes_your_codes(warden):
    """The attacker reads every keychain item and the whole database, and
    tries each value as the authenticator secret: the codes it computes
    confirm nothing, and each try is logged. Only the person's own code (from
    their phone, which the test stands in for) confirms."""
    warden.start()
    warden.admin.login()  # through the running Warden, as the app does
    secrets = every_keychain_secret()
    assert secrets, "the keychain holds Warden's items"
    assert warden.admin.secret not in " ".join(secrets), "the authenticator secret is in the keychain in the clear"
    with sqlite3.connect(warden.data_dir / "warden.db") as db:
        cells = [str(c) for t, in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                 for row in db.execute(f'SELECT * FROM "{t}"') for c in row if c is not None]
    assert not any(warden.admin.secret in c for c in cells), "the authenticator secret is in the database"

    import time
    # The keychain's values first; fewer tries than would lock the account,
    # so that the person's own code still works at the end.
    codes = list(dict.fromkeys(c for v in secrets + cells for c in codes_from(v, time.time())))[:3]
    for code in codes:
        out = warden.cli("confirm", check=False, input=code + "\n")
        assert out.returncode != 0, "a code computed from a stolen value confirmed"
    tried = len(codes)
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--limit", "2000").stdout.splitlines()]
    failed = [json.loads(r["detail"]) for r in rows if r["kind"] == "approval.step_up"]
    assert len([d for d in failed if d["result"] != "verified"]) == tried, failed

    # No Warden running and no password: nothing to check a code against.
    warden.stop()
    out = warden.cli("confirm", check=False, input=warden.admin.next_code() + "\n")
    assert out.returncode != 0, "a code confirmed without the password that unseals its secret"
    warden.cli("confirm", "--password-stdin", input=warden.admin.password + "\n" + warden.admin.next_code() + "\n")


def test_an_admin_who_adds_a_person_never_holds_what_signs_in_as_them(warden):
    invited = json.loads(warden.cli("user", "add", "mia", "--json").stdout)
    assert set(invited) == {"user", "code", "expires_s"}, "no password, secret or recovery code reaches the admin"
    assert invited["user"]["invited"] is True

    def enrol(code: str, password: str = "a passphrase she chose"):
        return warden.cli("enrol", "mia", "--password-stdin", "--json", check=False, input=code + "\n" + password + "\n")

    wrong = enrol("aaaaa-bbbbb-ccccc-ddddd")
    assert wrong.returncode != 0 and "ask your admin for a new code" in wrong.stderr, wrong.stderr
    ok = enrol(invited["code"].upper())
    assert ok.returncode == 0, ok.stderr
    mine = json.loads(ok.stdout)
    assert mine["totp_secret"] and len(mine["recovery_codes"]) == 10
    again = enrol(invited["code"], "another passphrase entirely")
    assert again.returncode != 0, "a setup code works once"

    rows = [json.loads(l) for l in warden.cli("log", "--json", "--person", "mia").stdout.splitlines()]
    kinds = [r["kind"] for r in rows if r["on_behalf_of"] == "mia"]
    assert kinds.count("person.enrolled") == 1 and kinds.count("person.enrolment_failed") == 2, kinds
    people = {p["name"]: p for p in json.loads(warden.cli("user", "list", "--json").stdout)}
    assert people["mia"]["invited"] is False


NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def test_another_process_of_the_same_user_cannot_read_wardens_memory(tmp_path):
    """Both sides run as one unprivileged user (nobody): Warden waiting for a
    password, and a process that tries to read it the way a debugger would."""
    import os
    import shutil
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    from conftest import WARDEN

    if os.geteuid() != 0:
        raise AssertionError("this test runs both sides as another user and needs root to do so")
    place = Path(tempfile.mkdtemp(prefix="warden-same-user-", dir="/tmp"))
    try:
        place.chmod(0o755)
        binary = place / "warden"
        shutil.copy(WARDEN, binary)
        home = place / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "MARKER": "only-warden-knows-this"}

        def peek(pid: int) -> subprocess.CompletedProcess:
            return subprocess.run([*AS_NOBODY, "cat", f"/proc/{pid}/environ"], capture_output=True, timeout=30)

        # A process of the same user that did nothing special is open to it:
        # the refusal below is Warden's doing, not the machine's.
        plain = subprocess.Popen([*AS_NOBODY, "sleep", "30"], env=env)
        warden = subprocess.Popen([*AS_NOBODY, str(binary), "--data-dir", str(home / "data"), "login", "ada",
                                   "--password-stdin"], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            assert warden.poll() is None, warden.stderr.read()
            seen = peek(plain.pid)
            assert seen.returncode == 0 and b"only-warden-knows-this" in seen.stdout, seen.stderr
            refused = peek(warden.pid)
            assert refused.returncode != 0 and b"Permission denied" in refused.stderr, refused
            mem = subprocess.run([*AS_NOBODY, "dd", f"if=/proc/{warden.pid}/mem", "bs=1", "count=1", "skip=4096"],
                                 capture_output=True, timeout=30)
            assert mem.returncode != 0 and b"Permission denied" in mem.stderr, mem
        finally:
            plain.kill()
            warden.kill()
            plain.wait(timeout=10)
            warden.wait(timeout=10)
    finally:
        shutil.rmtree(place, ignore_errors=True)



def test_a_code_never_rides_on_the_command_line(warden):
    """Every process of the computer reads command lines (the process list):
    a code there could be read and spent before the person's own command."""
    code = warden.admin.next_code()
    rows_before = warden.cli("log", "--json", "--limit", "500").stdout.splitlines()
    for args in (("login", "admin", "--password-stdin", "--totp", code),
                 ("login", "admin", "--password-stdin", "--recovery", "abcd-efgh-ijkl"),
                 ("confirm", "--password-stdin", "--totp", code),
                 ("approvals", "approve", "0123abcd", "--totp", code),
                 ("server", "consent", "files", "--yes", "--totp", code)):
        out = warden.cli(*args, check=False, input=warden.admin.password + "\n")
        assert out.returncode != 0 and "takes no code on the command line" in out.stderr, (args, out.stderr)
    # Nothing was sent: no sign-in attempt or refusal in the log, and the
    # code is still good when given as a person types it.
    assert warden.cli("log", "--json", "--limit", "500").stdout.splitlines() == rows_before
    warden.admin.login(code=code)
