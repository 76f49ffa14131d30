"""Warden as an MCP authorization client: the conformance suite's client
authorization scenarios, and signing in to a real OAuth-protected server."""

from __future__ import annotations

import re
import subprocess

from conftest import ROOT
from test_conformance import BIN, node_env

CLIENT = ROOT / "target" / "debug" / "warden-oauth-conformance"

# Scenarios outside the default suite: the 2026-07-28 ones and the
# 2025-03-26 back-compatibility ones, run one by one.
EXTRA = ["resource-mismatch", "offline-access-scope", "offline-access-not-supported",
         "authorization-server-migration", "iss-supported", "iss-not-advertised", "iss-supported-missing",
         "iss-wrong-issuer", "iss-unexpected", "iss-normalized", "metadata-issuer-mismatch",
         "2025-03-26-oauth-metadata-backcompat", "2025-03-26-oauth-endpoint-fallback"]


def conformance(*args: str) -> str:
    if not CLIENT.exists():
        raise AssertionError(f"{CLIENT} is missing: cargo build --workspace")
    out = subprocess.run([str(BIN / "conformance"), "client", "--command", str(CLIENT), *args],
                         env=node_env(), capture_output=True, text=True, timeout=300, cwd=ROOT / "tests")
    return out.stdout + out.stderr


def test_the_conformance_suites_client_authorization_scenarios_pass():
    for args in (["--suite", "auth"], ["--suite", "auth", "--spec-version", "2026-07-28"]):
        text = conformance(*args)
        total = re.search(r"Total: (\d+) passed, (\d+) failed, (\d+) warnings", text)
        assert total, text[-3000:]
        passed, failed, warnings = map(int, total.groups())
        print(args, total.group(0))
        assert passed >= 200 and failed == 0, text[-3000:]
        # The one warning: Warden has no client ID metadata document URL to offer.
        assert warnings == 0 or (warnings == 1 and re.search(r"auth/basic-cimd: \d+ passed, 0 failed, 1 warnings", text)), text[-3000:]
    for s in EXTRA:
        text = conformance("--scenario", f"auth/{s}")
        m = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", text)
        assert m and m.group(1) == m.group(2) and m.group(3) == "0", (s, text[-2000:])
