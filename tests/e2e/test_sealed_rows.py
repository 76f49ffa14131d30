"""The attacker runs as you and writes Warden's database file directly: it
edits a person's row, points a session at the admin, plants a trigger, or
swaps in an admin of its own making (from an install it made itself, with a
password and authenticator it knows) while Warden runs. Each row that says who is a person
carries a seal under a key only a person's password opens, so every one of
these is refused, and written down."""

from __future__ import annotations

import json
import sqlite3
import subprocess

from conftest import Warden


def db(warden):
    return sqlite3.connect(warden.data_dir / "warden.db")


def log_rows(warden) -> list[dict]:
    return [json.loads(l) for l in warden.cli("log", "--json", "--limit", "2000").stdout.splitlines()]


def test_a_row_written_into_the_database_makes_no_one_a_person_or_an_admin(warden):
    mia = warden.add_person("mia")
    mia.login()
    warden.start()
    denied = warden.cli("user", "list", check=False)
    assert denied.returncode != 0 and "only an admin" in denied.stderr, denied.stderr

    # mia's own row, edited to make her an admin.
    with db(warden) as c:
        c.execute("UPDATE users SET role = 'admin' WHERE name = 'mia'")
    out = warden.cli("user", "list", "--json", check=False)
    assert out.returncode != 0, "an edited row made a member an admin"
    assert "changed outside Warden" in out.stderr, out.stderr
    with db(warden) as c:
        c.execute("UPDATE users SET role = 'member' WHERE name = 'mia'")
    # Put back exactly as Warden sealed it, the row is hers again.
    assert warden.cli("whoami").stdout.strip() == "mia (member)"

    # mia's session, pointed at the admin.
    with db(warden) as c:
        admin_id, = c.execute("SELECT id FROM users WHERE name = 'admin'").fetchone()
        mia_id, = c.execute("SELECT id FROM users WHERE name = 'mia'").fetchone()
        c.execute("UPDATE sessions SET user_id = ? WHERE user_id = ?", (admin_id, mia_id))
    out = warden.cli("whoami", check=False)
    assert out.returncode != 0 and "admin" not in out.stdout, "a session row moved to the admin signed in as the admin"
    assert "changed outside Warden" in out.stderr, out.stderr

    with db(warden) as c:
        c.execute("UPDATE sessions SET user_id = ? WHERE user_id = ?", (mia_id, admin_id))
    assert warden.cli("whoami").stdout.strip() == "mia (member)"

    # The same with no Warden running: the CLI opens the files itself, with
    # mia's password, and still refuses the edited row.
    warden.stop()
    with db(warden) as c:
        c.execute("UPDATE users SET role = 'admin' WHERE name = 'mia'")
    out = warden.cli("user", "list", "--json", check=False)
    assert out.returncode != 0 and "changed outside Warden" in out.stderr, out.stderr

    refused = [r for r in log_rows_as_admin(warden) if r["kind"] == "store.row_refused"]
    assert len(refused) >= 2, refused


def log_rows_as_admin(warden) -> list[dict]:
    warden.admin.login()
    return log_rows(warden)


def test_a_planted_trigger_cannot_rewrite_a_row_as_warden_writes_it(warden):
    mia = warden.add_person("mia")
    # A trigger that would make mia an admin as Warden writes her new
    # session, inside the very write that seals it.
    with db(warden) as c:
        c.execute("CREATE TRIGGER promote AFTER INSERT ON sessions BEGIN "
                  "UPDATE users SET role = 'admin' WHERE name = 'mia'; END")
    out = mia.login(check=False)
    assert out.returncode != 0 and "trigger Warden did not make" in out.stderr, out.stderr
    with db(warden) as c:
        role, = c.execute("SELECT role FROM users WHERE name = 'mia'").fetchone()
        c.execute("DROP TRIGGER promote")
    assert role == "member", "the planted trigger ran inside Warden's write"
    mia.login()
    assert warden.cli("whoami").stdout.strip() == "mia (member)"


def keychain_items() -> list[dict]:
    # secret-tool writes the attributes to stderr: one stream, in order.
    out = subprocess.run(["stdbuf", "-oL", "-eL", "secret-tool", "search", "--all", "--unlock", "service", "warden"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    items, item = [], None
    for line in out.stdout.splitlines():
        if line.startswith("["):
            item = {"attributes": {}}
            items.append(item)
        elif item is not None and line.startswith("attribute."):
            k, v = line[len("attribute."):].split(" = ", 1)
            item["attributes"][k] = v
        elif item is not None and line.startswith("secret = "):
            item["secret"] = line.split(" = ", 1)[1]
    return items


def copy_keychain_item(from_account: str, to_account: str) -> None:
    items = keychain_items()
    found = [i for i in items if i["attributes"].get("username") == from_account]
    assert found, (from_account, [i["attributes"] for i in items])
    item = found[0]
    attrs = dict(item["attributes"], username=to_account)
    args = [a for k, v in attrs.items() for a in (k, v)]
    subprocess.run(["secret-tool", "store", "--label", "warden", *args], input=item["secret"],
                   text=True, check=True, timeout=30)


def test_an_admin_swapped_in_from_an_install_of_the_attackers_does_not_sign_in(warden, tmp_path):
    warden.start()
    # The attacker's own install: an admin "admin" whose password and
    # authenticator it knows.
    other = Warden(tmp_path / "other")
    other.data_dir.mkdir()
    theirs = other.init_admin("admin")

    def install_id(w):
        with db(w) as c:
            return c.execute("SELECT value FROM settings WHERE key = 'install_id'").fetchone()[0]

    cols = "password_hash, totp_enrolled, created_at_us, vault, seal"
    with db(other) as c:
        row = c.execute(f"SELECT {cols} FROM users WHERE name = 'admin'").fetchone()
    with db(warden) as c:
        admin_id, = c.execute("SELECT id FROM users WHERE name = 'admin'").fetchone()
        c.execute(f"UPDATE users SET ({cols}) = (?, ?, ?, ?, ?) WHERE id = ?", (*row, admin_id))
    copy_keychain_item(f"{install_id(other)}/totp/1", f"{install_id(warden)}/totp/{admin_id}")

    # Against the running Warden, which holds this install's key.
    theirs.warden = warden
    out = theirs.login(check=False)
    assert out.returncode != 0, "an admin made in another install signed in here"
    assert "changed outside Warden" in out.stderr, out.stderr

    with db(warden) as c:
        failed = [json.loads(d) for d, in c.execute(
            "SELECT detail FROM activity WHERE kind = 'auth.sign_in_failed' AND on_behalf_of = 'admin'")]
    assert [f["how"] for f in failed].count("account changed outside Warden") == 1, failed
    # (A Warden it restarts holds no key, and its own key opens its own
    # row: the README says so.)
