"""The activity log is tamper-evident: `warden audit verify` walks the hash
chain and the ed25519-signed checkpoints (key in the keychain)."""

from __future__ import annotations

import re
import sqlite3

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
