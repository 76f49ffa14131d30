"""A stdio MCP server with one tool, `add_note`, that appends its text to the
file named on the command line. Standard library only, so it runs as any OS
user from a copy in a shared folder (the presence tests run Warden as a test
user, who may not be able to read the checkout).
Runs as:  python3 notes_server.py NOTES_FILE
"""

from __future__ import annotations

import json
import sys

NOTES = sys.argv[1]
TOOL = {
    "name": "add_note",
    "description": "Append a line of text to the notes file.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def answer(msg_id, result) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, msg_id = msg.get("method"), msg.get("id")
    if msg_id is None:
        continue
    if method == "initialize":
        answer(msg_id, {
            "protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "notes", "version": "1"},
        })
    elif method == "tools/list":
        answer(msg_id, {"tools": [TOOL]})
    elif method == "tools/call":
        text = msg["params"].get("arguments", {}).get("text", "")
        with open(NOTES, "a", encoding="utf-8") as f:
            f.write(text + "\n")
        answer(msg_id, {"content": [{"type": "text", "text": "noted"}]})
    elif method == "ping":
        answer(msg_id, {})
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg_id,
                                     "error": {"code": -32601, "message": f"no method {method}"}}) + "\n")
        sys.stdout.flush()
