"""Desktop notifications for approval requests, with a real notification
server (dunst) on a display of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import ROOT


def test_an_approval_request_shows_a_desktop_notification(tmp_path):
    for tool in ("xvfb-run", "dunst", "dunstctl", "dbus-run-session"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} is missing: run .ci/setup")
    # A display and a session bus of its own, where D-Bus starts dunst.
    env = {k: v for k, v in os.environ.items() if k not in ("WARDEN_KEYCHAIN_SESSION", "DBUS_SESSION_BUS_ADDRESS")}
    out = subprocess.run(
        ["xvfb-run", "-a", "bash", ".ci/with-keychain", sys.executable, "tests/e2e/notify_scenario.py", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "notification shown: desk-bot asks to use write_file (fs)" in out.stdout, out.stdout
    assert "approved from the CLI; the call completed" in out.stdout
