"""Other OS users get nothing from Warden: its data folder and logs folder
are this user's only (0700), and what Warden writes there (the database,
its write-ahead log, configuration, the control socket) and its exports are
0600, created that way. Read back as another OS user (nobody), as a second account
on a shared workstation would."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import Warden

NOBODY = 65534


def as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd],
                          capture_output=True, text=True, timeout=30)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.fixture
def shared_place():
    """A folder every user may pass through, as a home folder often is
    (pytest's own temporary folders are 0700, which would hide everything)."""
    base = Path(tempfile.mkdtemp(prefix="warden-shared-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_another_os_user_can_read_nothing_warden_writes(shared_place):
    if os.geteuid() != 0:
        raise AssertionError("this test reads files as another OS user, which needs root (CI runs as root)")
    # The check itself works: nobody reads a plain file in the shared place.
    planted = shared_place / "readable.txt"
    planted.write_text("anyone may read this\n")
    planted.chmod(0o644)
    assert as_nobody("cat", str(planted)).returncode == 0, "the test could not show a readable file"

    # A data folder as an older Warden, or a person, may have made it.
    data = shared_place / "data"
    data.mkdir()
    data.chmod(0o755)
    w = Warden(data)
    w.init_admin()
    w.start()
    try:
        w.cli("role", "add", "readers", "--description", "a row in the activity log")
        out = shared_place / "activity.csv"
        w.cli("audit", "export", "--format", "csv", "-o", str(out))
        written = [data / "warden.db", data / "warden.db-wal", data / "warden.db-shm", data / "warden.sock",
                   data / "config.toml", *sorted((data / "logs").iterdir())]
        present = [p for p in written if p.exists()]
        assert data / "warden.db" in present and data / "warden.sock" in present, present
        assert any(p.parent.name == "logs" for p in present), "a log file was written"
        assert mode(data) == 0o700, oct(mode(data))
        assert mode(data / "logs") == 0o700, oct(mode(data / "logs"))
        # Log files are written by tracing-appender with the process's usual
        # mode; the two 0700 folders around them keep them from others.
        wide = {str(p): oct(mode(p)) for p in [*present, out] if mode(p) & 0o077 and p.parent.name != "logs"}
        assert not wide, f"readable by others: {wide}"
        for p in [data / "warden.db", *(data / "logs").iterdir(), out]:
            r = as_nobody("cat", str(p))
            assert r.returncode != 0 and "Permission denied" in r.stderr, (p, r.stdout[:80], r.stderr)
        listing = as_nobody("ls", str(data))
        assert listing.returncode != 0 and "Permission denied" in listing.stderr, listing
    finally:
        w.stop()
