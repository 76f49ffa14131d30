"""The activity log is tamper-evident: `warden audit verify` walks the hash
chain and the ed25519-signed checkpoints (key in the keychain)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

from conftest import MODERN_META, peer


def test_verify_passes_on_an_untouched_log_and_names_the_tampered_row(warden):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("bot")
    warden.start()
    for i in range(5):
        r = warden.post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": f"m{i}"}, "_meta": MODERN_META}}, token)
        assert "result" in r.json()
    warden.stop()
    ok = warden.cli("audit", "verify")
    assert re.search(r"intact: \d+ rows, [1-9]\d* signed checkpoints", ok.stdout), ok.stdout

    db = warden.data_dir / "warden.db"
    pristine = db.read_bytes()
    conn = sqlite3.connect(db)
    row = conn.execute("SELECT id FROM activity WHERE kind = 'tool_call.requested' ORDER BY id LIMIT 1 OFFSET 2").fetchone()[0]
    conn.executescript(f"DROP TRIGGER activity_no_update; UPDATE activity SET arguments = '{{\"message\":\"forged\"}}' WHERE id = {row};")
    conn.close()
    bad = warden.cli("audit", "verify", check=False)
    assert bad.returncode != 0 and f"at row {row}" in bad.stderr and "changed" in bad.stderr, bad.stderr

    # Rows cut off the end, with the checkpoints that covered them.
    db.write_bytes(pristine)
    for suffix in ("-wal", "-shm"):
        (warden.data_dir / f"warden.db{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    last = conn.execute("SELECT max(id) FROM activity").fetchone()[0]
    conn.executescript(f"DELETE FROM activity WHERE id > {last - 3}; DELETE FROM checkpoints WHERE row_id > {last - 3};")
    conn.close()
    cut = warden.cli("audit", "verify", check=False)
    assert cut.returncode != 0 and "cut short" in cut.stderr, cut.stderr


def test_rows_the_cli_writes_with_no_gateway_running_are_checkpointed_too(warden):
    # No gateway runs: each command writes its rows itself.
    for name in ("alpha", "beta", "gamma"):
        warden.cli("role", "add", name)
    ok = warden.cli("audit", "verify")
    assert "intact" in ok.stdout, ok.stdout
    conn = sqlite3.connect(warden.data_dir / "warden.db")
    last = conn.execute("SELECT max(id) FROM activity").fetchone()[0]
    # The newest row, and any checkpoint that names it, go.
    conn.executescript(f"DELETE FROM activity WHERE id = {last}; DELETE FROM checkpoints WHERE row_id >= {last};")
    conn.close()
    cut = warden.cli("audit", "verify", check=False)
    assert cut.returncode != 0 and "cut short" in cut.stderr, cut.stdout + cut.stderr


def test_a_locked_database_refuses_calls_and_forwards_nothing(warden, files_root):
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    token = warden.add_agent("bot")
    warden.start()
    blocker = sqlite3.connect(warden.data_dir / "warden.db", timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": str(files_root / "nope.txt"), "content": "x"}, "_meta": MODERN_META}}, token)
        err = r.json()["error"]
        assert "could not record this call" in err["message"] and "not sent" in err["message"], err
        assert not (files_root / "nope.txt").exists(), "nothing reached the server"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # Once the database can be written again, calls go through.
    r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": str(files_root / "yes.txt"), "content": "y"}, "_meta": MODERN_META}}, token)
    assert "result" in r.json(), r.text
    assert (files_root / "yes.txt").read_text() == "y"


def test_a_full_disk_refuses_calls_and_warden_recovers(tmp_path, files_root):
    from conftest import Warden

    mount = tmp_path / "small"
    mount.mkdir()
    # A 2 MiB file system of its own for the data folder (the test runs as root, as CI does).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        warden = Warden(mount / "data")
        warden.data_dir.mkdir()
        warden.init_admin()
        warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
        token = warden.add_agent("bot")
        warden.start()
        filler = mount / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        refused = 0
        for i in range(20):
            r = warden.post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": str(files_root / f"full{i}.txt"), "content": "x" * 2000}, "_meta": MODERN_META}}, token)
            if "error" in r.json():
                assert "could not record this call" in r.json()["error"]["message"]
                assert not (files_root / f"full{i}.txt").exists(), "a refused call never reaches the server"
                refused += 1
        assert refused > 0, "with the disk full, calls are refused"
        filler.unlink()
        r = warden.post({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": str(files_root / "after.txt"), "content": "ok"}, "_meta": MODERN_META}}, token)
        assert "result" in r.json(), r.text
        warden.stop()
        assert "intact" in warden.cli("audit", "verify").stdout
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_sigkill_during_a_burst_loses_no_row_of_a_call_the_server_received(warden, files_root):
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    token = warden.add_agent("bot")
    warden.start()
    done = []

    def burst(worker: int):
        for i in range(40):
            try:
                warden.post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "fs__write_file", "arguments": {"path": str(files_root / f"b{worker}-{i}.txt"), "content": "x"}, "_meta": MODERN_META}}, token)
                done.append(1)
            except Exception:
                return

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    while len(done) < 60:
        time.sleep(0.01)
    os.kill(warden.proc.pid, signal.SIGKILL)
    warden.proc.wait()
    for t in threads:
        t.join(timeout=30)
    written = {p.name for p in files_root.glob("b*-*.txt")}
    assert written, "the server received calls before the kill"
    rows = [json.loads(l) for l in warden.cli("log", "--json", "--limit", "100000").stdout.splitlines()]
    logged = {json.loads(r["arguments"])["path"].rsplit("/", 1)[1] for r in rows if r["kind"] == "tool_call.requested" and r.get("arguments")}
    assert written <= logged, f"calls the server received without a row: {sorted(written - logged)}"
    assert "intact" in warden.cli("audit", "verify").stdout


def test_search_filters_and_streamed_exports(warden, tmp_path):
    import csv

    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("bot")
    warden.start()
    for i in range(6):
        warden.post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": f"needle{i}"}, "_meta": MODERN_META}}, token)
    found = [json.loads(l) for l in warden.cli("log", "--json", "--search", "needle3").stdout.splitlines()]
    assert [json.loads(r["arguments"])["message"] for r in found] == ["needle3"]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert warden.cli("log", "--json", "--until", "2000-01-01").stdout.strip() == ""
    assert len(warden.cli("log", "--json", "--since", today, "--kind", "tool_call.requested").stdout.splitlines()) == 6
    bad = warden.cli("log", "--since", "yesterday-ish", check=False)
    assert bad.returncode != 0 and "not a date" in bad.stderr

    out = tmp_path / "activity.csv"
    res = warden.cli("audit", "export", "--format", "csv", "--kind", "tool_call.requested", "-o", str(out))
    assert "Wrote 6 rows" in res.stdout and "exported 6 of 6 rows" in res.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and rows[0]["agent"] == "bot" and rows[0]["tool"] == "echo"
    jl = tmp_path / "activity.jsonl"
    warden.cli("audit", "export", "--format", "jsonl", "-o", str(jl))
    lines = [json.loads(l) for l in jl.read_text().splitlines()]
    assert [l["id"] for l in lines] == sorted(l["id"] for l in lines), "oldest first"

    # A member's export holds only their own activity.
    eve = warden.add_person("eve")
    eve.login()
    mine = tmp_path / "mine.jsonl"
    warden.cli("audit", "export", "--format", "jsonl", "-o", str(mine))
    assert all(json.loads(l)["on_behalf_of"] == "eve" for l in mine.read_text().splitlines())


def test_retention_prunes_behind_a_signed_anchor_and_the_rest_verifies(warden):
    warden.cli("server", "add", "ev", "--", peer("mcp-server-everything"), "stdio")
    token = warden.add_agent("bot")
    warden.start()
    for i in range(8):
        warden.post({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "ev__echo", "arguments": {"message": f"r{i}"}, "_meta": MODERN_META}}, token)
    out = warden.cli("audit", "prune", "--keep-rows", "5")
    assert re.search(r"Removed \d+ rows", out.stdout), out.stdout
    warden.stop()
    ok = warden.cli("audit", "verify")
    assert "intact" in ok.stdout, ok.stdout
    conn = sqlite3.connect(warden.data_dir / "warden.db")
    first = conn.execute("SELECT min(id) FROM activity").fetchone()[0]
    conn.execute(f"DELETE FROM activity WHERE id = {first}")
    conn.commit()
    conn.close()
    bad = warden.cli("audit", "verify", check=False)
    assert bad.returncode != 0 and "retention anchor" in bad.stderr, bad.stderr
    nothing = warden.cli("audit", "prune", check=False)
    assert nothing.returncode != 0 and "say what to keep" in nothing.stderr
