"""Run by test_notifications.py inside its own display (xvfb-run) and
session bus, where D-Bus starts dunst on demand: an approval request must
show as a desktop notification, and the call still completes when it is
approved from the command line.

    xvfb-run -a bash .ci/with-keychain python tests/e2e/notify_scenario.py DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import Warden, peer  # noqa: E402
from test_approvals import approval_timeout, call_later, result_of, wait_pending  # noqa: E402


def dunstctl(*args: str) -> str:
    return subprocess.run(["dunstctl", *args], capture_output=True, text=True, timeout=10, check=True).stdout


def main(root: Path) -> None:
    files = root / "files"
    files.mkdir()
    w = Warden(root / "data")
    w.data_dir.mkdir()
    w.init_admin()
    try:
        w.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files))
        w.cli("role", "add", "writer")
        w.cli("grant", "writer", "fs", "*", "allow")
        token = json.loads(w.cli("agent", "add", "desk-bot", "--role", "writer", "--json").stdout)["credential"]
        approval_timeout(w, 60)
        w.start()
        f = call_later(w, token, "fs__write_file", {"path": str(files / "n.txt"), "content": "from the desktop"})
        [req] = wait_pending(w)
        deadline = time.time() + 20
        while time.time() < deadline and dunstctl("count", "displayed").strip() in ("", "0"):
            time.sleep(0.2)
        displayed = dunstctl("count", "displayed").strip()
        assert displayed not in ("", "0"), f"no notification is displayed:\n{w.log()}"
        # Closing it moves it to the history, where its text can be read.
        dunstctl("close-all")
        history = json.loads(dunstctl("history"))
        texts = [n["summary"]["data"] + " " + n["body"]["data"] for n in history["data"][0]]
        # In words: who asks for what, the file, and no command to type.
        assert any("desk-bot asks to use write_file (fs)" in t and "n.txt" in t for t in texts), texts
        assert not any("warden approvals" in t or req["id"] in t for t in texts), texts
        print("notification shown:", texts[0].splitlines()[0])
        w.cli("approvals", "approve", req["id"])
        result, _ = result_of(f)
        assert not result.get("isError"), result
        assert (files / "n.txt").read_text() == "from the desktop"
        assert "approval request shown as a desktop notification" in w.log()
        print("approved from the CLI; the call completed")
    finally:
        w.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
