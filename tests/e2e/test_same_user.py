"""The attacker runs as you: a process of the person's own OS user, which
knows no password and no code, finds the person's signed-in session and tries
to widen what agents may do with it. Every attempt must be refused, logged,
and change nothing."""

from __future__ import annotations

import json
import sqlite3

from conftest import peer


def age_second_factor(warden, seconds: int = 3600) -> None:
    """The session was opened with a code, but that was an hour ago."""
    with sqlite3.connect(warden.data_dir / "warden.db") as db:
        db.execute("UPDATE sessions SET mfa_at_s = mfa_at_s - ?", (seconds,))


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

    age_second_factor(warden)
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
    ]
    for args, stdin in attempts:
        out = warden.cli(*args, check=False, input=stdin)
        assert out.returncode != 0, f"warden {' '.join(args)} went through on a stale second factor"
        assert "confirm it is you" in out.stderr, (args, out.stderr)

    assert snapshot(warden) == before, "a refused change changed something"
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--limit", "500").stdout.splitlines()]
    assert len(rows) >= rows_before, "nothing was pruned"
    refused = [json.loads(r["detail"]) for r in rows if r["kind"] == "access.refused"]
    assert len([r for r in refused if r["why"] == "no recent second factor"]) == len(attempts), refused
    assert "intact" in warden.cli("audit", "verify").stdout

    # The person, with a code of their own, does it in one step.
    warden.cli("confirm", "--totp", warden.admin.next_code())
    warden.cli("user", "enable", "mia")
    assert {p["name"]: p["status"] for p in snapshot(warden)["people"]}["mia"] == "active"


def test_an_admin_who_adds_a_person_never_holds_what_signs_in_as_them(warden):
    invited = json.loads(warden.cli("user", "add", "mia", "--json").stdout)
    assert set(invited) == {"user", "code", "expires_s"}, "no password, secret or recovery code reaches the admin"
    assert invited["user"]["invited"] is True

    def enrol(code: str, password: str = "a passphrase she chose"):
        return warden.cli("enrol", "mia", "--code", code, "--password-stdin", "--json", check=False, input=password + "\n")

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
