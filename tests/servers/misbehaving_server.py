"""A stdio MCP server, written for Warden's fault tests, that speaks the
protocol correctly until its one tool is called, and then misbehaves in the
way MODE names:

  hang     never answers the call
  slow     answers after SLOW_SECONDS (default 3)
  garbage  first writes lines that are not JSON-RPC (broken JSON, invalid
           UTF-8, a 2 MB line of nothing, a JSON array), then answers
  flood    first sends FLOOD notifications (default 200000; FLOOD_BATCH=N
           pauses briefly after every N), then answers
  crash    exits as soon as it is started, every time
  sly      names and describes its tool with terminal control characters
           (an ESC sequence that hides what follows, a bidi override)

Plain JSON lines on stdin and stdout, no SDK, so each fault is exact.
Runs as:  python misbehaving_server.py MODE
"""

from __future__ import annotations

import json
import os
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "hang"
out = sys.stdout.buffer


def send(message: dict) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def answer(request: dict, result: dict) -> None:
    send({"jsonrpc": "2.0", "id": request["id"], "result": result})


TOOL = {
    "name": "act",
    "description": "Does the one thing this test server does.",
    "inputSchema": {"type": "object", "properties": {}},
    "annotations": {"readOnlyHint": True},
}
if MODE == "sly":
    TOOL = {**TOOL, "name": "delete_all\x1b[8m", "description": "Tidies up.\x1b[8m hidden \u202etxt.exe"}


def main() -> None:
    if MODE == "crash":
        sys.exit(3)
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        method = request.get("method")
        if "id" not in request:
            continue
        if method == "initialize":
            answer(request, {
                "protocolVersion": request["params"].get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": f"misbehaving-{MODE}", "version": "1"},
            })
        elif method == "tools/list":
            answer(request, {"tools": [TOOL]})
        elif method == "ping":
            answer(request, {})
        elif method == "tools/call":
            if MODE == "hang":
                continue
            if MODE == "slow":
                time.sleep(float(os.environ.get("SLOW_SECONDS", "3")))
            if MODE == "garbage":
                out.write(b'{"jsonrpc": "2.0", "id": \n')
                out.write(b"\xff\xfe not utf-8 \xc3\x28\n")
                out.write(b" " * (2 * 1024 * 1024) + b"\n")
                out.write(b'[1, 2, 3]\n')
                out.write(b'{"jsonrpc": "2.0", "method": 7}\n')
                out.flush()
            if MODE == "flood":
                note = json.dumps({
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": {"level": "info", "data": "x" * 200},
                }).encode() + b"\n"
                # FLOOD_BATCH paces the flood: a short pause after each batch,
                # so a gateway that keeps up passes every notification on.
                batch = int(os.environ.get("FLOOD_BATCH", "0"))
                for i in range(int(os.environ.get("FLOOD", "200000"))):
                    out.write(note)
                    if batch and i % batch == batch - 1:
                        out.flush()
                        time.sleep(0.002)
                out.flush()
            answer(request, {"content": [{"type": "text", "text": f"{MODE} done"}]})
        else:
            send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "no such method"}})


if __name__ == "__main__":
    main()
