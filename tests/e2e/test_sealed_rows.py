"""The attacker runs as you and writes Warden's database file directly: it
edits a person's row, points a session at the admin, plants a trigger, or
swaps in an admin of its own making (from an install it made itself, with a
password and authenticator it knows) while Warden runs. Each row that says who is a person
carries a seal under a key only a person's password opens, so every one of
these is refused, and written down."""

from __future__ import annotations

import json
import sqlite3

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
    # session, inside the very write that seals it; SQLite keeps the table's
    # name as written, so it is tried in another case too.
    for table in ("sessions", "Sessions"):
        with db(warden) as c:
            c.execute(f"CREATE TRIGGER promote AFTER INSERT ON {table} BEGIN "
                      "UPDATE users SET role = 'admin' WHERE name = 'mia'; END")
        out = mia.login(check=False)
        assert out.returncode != 0 and "trigger Warden did not make" in out.stderr, (table, out.stderr)
        with db(warden) as c:
            role, = c.execute("SELECT role FROM users WHERE name = 'mia'").fetchone()
            c.execute("DROP TRIGGER promote")
        assert role == "member", f"the planted trigger on {table} ran inside Warden's write"
    mia.login()
    assert warden.cli("whoami").stdout.strip() == "mia (member)"


def test_an_emptied_people_table_does_not_let_a_new_admin_take_the_key(warden):
    # A running, unlocked Warden holds the key. With the people table
    # emptied, `init` would make a new admin whose password the attacker
    # chose, with the install's key sealed under it.
    warden.start()
    with db(warden) as c:
        saved = c.execute("SELECT * FROM users").fetchall()
        c.execute("DELETE FROM users")
    out = warden.cli("init", "--admin", "eve", "--password-stdin", "--json",
                     input="a password of the attacker's own\n", check=False)
    assert out.returncode != 0 and "already has an admin" in out.stderr, out.stdout + out.stderr
    with db(warden) as c:
        assert not c.execute("SELECT 1 FROM users WHERE name = 'eve'").fetchall()
        marks = ", ".join("?" for _ in saved[0])
        c.executemany(f"INSERT INTO users VALUES ({marks})", saved)
    assert warden.cli("whoami").stdout.strip() == "admin (admin)"


def test_an_admin_swapped_in_from_an_install_of_the_attackers_does_not_sign_in(warden, tmp_path):
    warden.start()
    # The attacker's own install: an admin "admin" whose password and
    # authenticator it knows.
    # It gives that install this one's id first, so that its admin's sealed
    # authenticator secret opens under this install's name for it, and lands
    # in the keychain where this install's admin's was.
    other = Warden(tmp_path / "other")
    other.data_dir.mkdir()
    other.cli("whoami", check=False)  # makes its database
    with db(warden) as c:
        ours, = c.execute("SELECT value FROM settings WHERE key = 'install_id'").fetchone()
    with db(other) as c:
        c.execute("UPDATE settings SET value = ? WHERE key = 'install_id'", (ours,))
    theirs = other.init_admin("admin")

    # Everything of its admin's row but the id, name and counters.
    with db(other) as c:
        have = [r[1] for r in c.execute("PRAGMA table_info(users)")]
        cols = ", ".join(c for c in ("password_hash", "totp_enrolled", "created_at_us", "vault", "seal") if c in have)
        row = c.execute(f"SELECT {cols} FROM users WHERE name = 'admin'").fetchone()
    with db(warden) as c:
        admin_id, = c.execute("SELECT id FROM users WHERE name = 'admin'").fetchone()
        marks = ", ".join("?" for _ in row)
        c.execute(f"UPDATE users SET ({cols}) = ({marks}) WHERE id = ?", (*row, admin_id))

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
