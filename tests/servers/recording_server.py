"""A stdio MCP server, written for Warden's one-road tests, that writes every
message it receives to the file RECORD names (one JSON line each), so a test
can check exactly what reached a server and compare it with the log.

ERA=legacy (the default) speaks 2025-11-25 after `initialize` and offers:
  plain        a read-only tool that answers "plain done"
  ask_client   a read-only tool that first asks the client for a sampled
               message (a server request), then answers with its text
  prompt:summarize  a tool named like a prompt
  rec://a      a resource that can be subscribed to; logging too
ERA=modern speaks 2026-07-28 (answers `server/discover`) and offers:
  confirm      a tool whose first call answers input_required with an
               elicitation; a retry carrying inputResponses answers with them

Plain JSON lines on stdin and stdout, no SDK, so what is recorded is exact.
Runs as:  RECORD=/path ERA=legacy|modern python recording_server.py
"""

from __future__ import annotations

import json
import os
import sys

ERA = os.environ.get("ERA", "legacy")
RECORD = open(os.environ["RECORD"], "a", buffering=1)
out = sys.stdout.buffer
incoming = iter(sys.stdin.buffer)


def send(message: dict) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def receive() -> dict | None:
    for line in incoming:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        RECORD.write(json.dumps(message) + "\n")
        return message
    return None


def answer(request: dict, result: dict) -> None:
    send({"jsonrpc": "2.0", "id": request["id"], "result": result})


def tool(name: str, read_only: bool) -> dict:
    return {
        "name": name,
        "description": f"The {name} tool of the recording server.",
        "inputSchema": {"type": "object", "properties": {"note": {"type": "string"}}},
        "annotations": {"readOnlyHint": read_only},
    }


# The last poses as a prompt in a grant (`prompt:summarize`): Warden must not offer it.
LEGACY_TOOLS = [tool("plain", True), tool("ask_client", True), tool("prompt:summarize", True)]
MODERN_TOOLS = [tool("confirm", False)]
CAPABILITIES = {"tools": {}, "resources": {"subscribe": True}, "logging": {}}


def call(request: dict) -> None:
    params = request.get("params") or {}
    name = params.get("name")
    if name == "ask_client":
        send({
            "jsonrpc": "2.0", "id": "ask-1", "method": "sampling/createMessage",
            "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "say hi"}}],
                       "maxTokens": 10},
        })
        while (reply := receive()) is not None:
            if reply.get("id") == "ask-1" and "method" not in reply:
                text = (reply.get("result") or {}).get("content", {}).get("text", "no answer")
                answer(request, {"content": [{"type": "text", "text": f"sampled: {text}"}]})
                return
            handle(reply)
        return
    if name == "confirm":
        responses = params.get("inputResponses")
        if responses:
            answer(request, {"content": [{"type": "text", "text": "confirmed: " + json.dumps(responses, sort_keys=True)}]})
        else:
            answer(request, {
                "resultType": "input_required",
                "inputRequests": {"q": {"method": "elicitation/create", "params": {
                    "message": "Proceed?",
                    "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                }}},
                "requestState": "state-1",
            })
        return
    answer(request, {"content": [{"type": "text", "text": f"{name} done"}]})


def handle(request: dict) -> None:
    method = request.get("method")
    if "id" not in request or method is None:
        return
    if method == "server/discover":
        if ERA == "modern":
            answer(request, {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                             "serverInfo": {"name": "recording-modern", "version": "1"}})
        else:
            send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "method not found"}})
    elif method == "initialize":
        answer(request, {"protocolVersion": "2025-11-25", "capabilities": CAPABILITIES,
                         "serverInfo": {"name": "recording-legacy", "version": "1"}})
    elif method == "tools/list":
        answer(request, {"tools": MODERN_TOOLS if ERA == "modern" else LEGACY_TOOLS})
    elif method == "resources/list":
        answer(request, {"resources": [] if ERA == "modern" else [{"uri": "rec://a", "name": "a"}]})
    elif method in ("resources/templates/list",):
        answer(request, {"resourceTemplates": []})
    elif method == "prompts/list":
        answer(request, {"prompts": []})
    elif method == "tools/call":
        call(request)
    else:
        # ping, logging/setLevel, resources/subscribe and unsubscribe
        answer(request, {})


def main() -> None:
    while (message := receive()) is not None:
        handle(message)


if __name__ == "__main__":
    main()
