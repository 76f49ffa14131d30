"""One road to every server: what an agent sends a server outside a plain
call (a log level, a subscription, a roots change, an answer to the
server's own request, an input_required retry) is decided and recorded
before it arrives. A recording server writes down every message it gets,
and the test compares that with Warden's log."""

from __future__ import annotations

import json
import sys
import time

import anyio
import httpx2
import mcp.types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import MODERN_META, ROOT, legacy_session
from test_approvals import log, pending

RECORDER = ROOT / "tests" / "servers" / "recording_server.py"


def add_recorder(warden, name: str, era: str):
    record = warden.data_dir.parent / f"{name}.jsonl"
    record.touch()
    warden.cli("server", "add", name, "--env", f"RECORD={record}", "--env", f"ERA={era}", "--", sys.executable, str(RECORDER))
    return record


def received(record, method: str | None = None) -> list[dict]:
    messages = [json.loads(l) for l in record.read_text().splitlines() if l.strip()]
    return [m for m in messages if method is None or m.get("method") == method]


def wait_received(record, method: str, n: int = 1, timeout: float = 15) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = received(record, method)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError(f"the server never received {method}: {received(record)}")


def test_a_log_level_reaches_a_server_alone_and_recorded(warden):
    record = add_recorder(warden, "rec", "legacy")
    token = warden.add_agent("bot")
    warden.start()
    post = legacy_session(warden, token)
    secret = "exfil-" + str(time.time())
    r = post({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "debug", "notes": secret}})
    assert r.get("result") == {}, r
    [sent] = wait_received(record, "logging/setLevel")
    assert sent["params"] == {"level": "debug"}, "only the level is passed on, never the rest of the params"
    rows = [r for r in log(warden, "--server", "rec") if r["tool"] == "logging/setLevel"]
    assert [(r["kind"], r["agent"], r["decision"]) for r in rows] == [("message.sent", "bot", "allow")], rows
    assert rows[0]["arguments_hash"], rows
    # A level MCP does not have is refused, and nothing more goes out.
    bad = post({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "everything"}})
    assert bad["error"]["code"] == -32602 and "params.level must be one of" in bad["error"]["message"], bad
    time.sleep(0.5)
    assert len(received(record, "logging/setLevel")) == 1


def test_subscriptions_roots_changes_and_answers_to_a_server_are_recorded(warden):
    record = add_recorder(warden, "rec", "legacy")
    token = warden.add_agent("bot")
    warden.start()

    async def main():
        async def on_sampling(context, params):
            return mcp.types.CreateMessageResult(
                role="assistant", content=mcp.types.TextContent(type="text", text="hello from the client"), model="m")

        async def on_roots(context):
            return mcp.types.ListRootsResult(roots=[])

        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(warden.url, http_client=http), mode="legacy",
                                sampling_callback=on_sampling, list_roots_callback=on_roots) as client:
            await client.subscribe_resource("rec://a")
            await client.send_roots_list_changed()
            r = await client.call_tool("rec__ask_client", {"note": "n"})
            assert [c.text for c in r.content] == ["sampled: hello from the client"], r
            await client.unsubscribe_resource("rec://a")

    anyio.run(main)
    wait_received(record, "resources/unsubscribe")
    [roots] = wait_received(record, "notifications/roots/list_changed")
    answers = [m for m in received(record) if m.get("id") == "ask-1" and "method" not in m]
    assert answers and answers[0]["result"]["content"]["text"] == "hello from the client", received(record)

    rows = log(warden, "--server", "rec", "--limit", "200")
    seen = {(r["kind"], r["tool"], r["outcome"]) for r in rows}
    assert ("message.sent", "resources/subscribe", "subscribed") in seen, seen
    assert ("message.sent", "resources/unsubscribe", "unsubscribed") in seen, seen
    assert ("message.sent", "notifications/roots/list_changed", "sent") in seen, seen
    answered = [r for r in rows if r["kind"] == "server_request.answered"]
    assert [(r["tool"], r["agent"], r["outcome"]) for r in answered] == [("sampling/createMessage", "bot", "answered")], rows
    assert answered[0]["arguments_hash"], "the answer is recorded by its keyed hash"
    assert "hello from the client" not in json.dumps(rows), "what the client said is not in the log"


def test_an_input_required_retry_of_an_approved_call_asks_again(warden):
    record = add_recorder(warden, "rec", "modern")
    warden.cli("role", "add", "writer")
    warden.cli("grant", "writer", "rec", "*", "allow")
    ana = warden.add_person("ana")
    token = json.loads(warden.cli("agent", "add", "ana-bot", "--owner", "ana", "--role", "writer", "--json").stdout)["credential"]
    warden.start()
    ana.login()
    answers: list[str] = []

    def answer_approvals(*verbs: str) -> None:
        """Answers the next approval requests, one verb each, in order."""
        done: set[str] = set()
        for verb in verbs:
            deadline = time.time() + 60
            while time.time() < deadline:
                fresh = [p for p in pending(warden) if p["id"] not in done]
                if fresh:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"no approval request arrived: {warden.log()[-2000:]}")
            req = fresh[0]
            done.add(req["id"])
            answers.append(json.dumps(req["arguments"]))
            warden.cli("approvals", verb, req["id"])

    async def call(note: str, *verbs: str):
        async def on_elicit(context, params):
            return mcp.types.ElicitResult(action="accept", content={"ok": True})

        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=90)
        async with http, Client(streamable_http_client(warden.url, http_client=http), mode="legacy",
                                elicitation_callback=on_elicit) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, answer_approvals, *verbs)
                return await client.call_tool("rec__confirm", {"note": note})

    # Approved, then its retry (with the client's answer) is asked about and approved.
    r = anyio.run(call, "first", "approve", "approve")
    assert not r.is_error and r.content[0].text == 'confirmed: {"q": {"action": "accept", "content": {"ok": true}}}', r
    assert "inputResponses" in answers[1] and "inputResponses" not in answers[0], answers
    calls = received(record, "tools/call")
    assert len(calls) == 2 and "inputResponses" not in calls[0]["params"] and calls[1]["params"]["inputResponses"], calls

    # Approved, then its retry denied: the server never gets the retry.
    r = anyio.run(call, "second", "approve", "deny")
    assert r.is_error, r
    assert len(received(record, "tools/call")) == 3, received(record, "tools/call")

    rows = log(warden, "--agent", "ana-bot", "--limit", "200")
    retried = [r for r in rows if r["kind"] == "tool_call.retried"]
    assert len(retried) == 1 and retried[0]["arguments_hash"] and retried[0]["decision"] == "allow", rows
    decided = [r["outcome"] for r in rows if r["kind"] == "approval.decided"]
    assert sorted(decided) == ["approved", "approved", "approved", "denied"], decided


def test_a_resource_two_servers_list_is_refused_never_routed_by_name_order(warden):
    """A server named `aaa` that lists another server's URI must not receive its reads."""
    decoy = add_recorder(warden, "aaa", "legacy")
    record = add_recorder(warden, "rec", "legacy")
    token = warden.add_agent("bot")
    warden.start()
    read = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "rec://a", "_meta": MODERN_META}}
    r = warden.post(read, token).json()
    assert "more than one server offers the resource rec://a (aaa, rec)" in r["error"]["message"], r
    assert received(decoy, "resources/read") == [] and received(record, "resources/read") == []
    # Through the endpoint of the server meant, it is read there.
    r = warden.post(read, token, path="/servers/rec/mcp").json()
    assert "result" in r, r
    assert len(received(record, "resources/read")) == 1 and received(decoy, "resources/read") == []


def test_a_tool_named_like_a_prompt_is_not_offered_and_a_prompt_grant_never_reaches_a_tool(warden):
    record = add_recorder(warden, "rec", "legacy")
    warden.cli("role", "add", "prompts")
    warden.cli("grant", "prompts", "rec", "prompt:summarize", "allow")
    warden.cli("grant", "prompts", "rec", "plain", "allow")
    token = warden.add_agent("bot", "prompts")
    warden.start()
    listed = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}, token).json()
    names = {t["name"] for t in listed["result"]["tools"]}
    assert names == {"rec__plain"}, names
    shown = {t["name"] for t in json.loads(warden.cli("server", "tools", "rec", "--json").stdout)}
    assert "prompt:summarize" not in shown and "plain" in shown, shown
    # Called by any name it might have had, it is unknown and nothing reaches the server.
    for name in ("rec__prompt_summarize", "prompt:summarize", "rec__prompt:summarize"):
        r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}, "_meta": MODERN_META}}, token).json()
        assert "error" in r or r["result"].get("isError"), r
    assert [m["params"]["name"] for m in received(record, "tools/call")] == []


def test_a_passed_through_request_is_recorded_with_its_params_and_their_hash(warden):
    record = add_recorder(warden, "rec", "legacy")
    token = warden.add_agent("bot")
    warden.start()
    body = {"jsonrpc": "2.0", "id": 1, "method": "custom/report", "params": {"period": "q3", "_meta": MODERN_META}}
    r = warden.post(body, token, path="/servers/rec/mcp").json()
    assert "result" in r, r
    [got] = received(record, "custom/report")
    assert got["params"]["period"] == "q3"
    [row] = [r for r in log(warden, "--server", "rec") if r["kind"] == "request.requested"]
    assert row["tool"] == "custom/report" and row["arguments_hash"], row
    assert json.loads(row["arguments"]) == {"period": "q3"}, row


def test_an_input_required_retry_is_checked_again_even_when_nobody_was_asked(warden):
    """A call allowed without asking: if the agent loses its access while
    the client answers the server's question, the retry is not sent."""
    record = add_recorder(warden, "rec", "modern")
    warden.cli("role", "add", "confirmer")
    warden.cli("grant", "confirmer", "rec", "confirm", "allow")
    token = warden.add_agent("bot", "confirmer")
    warden.start()

    async def main():
        async def on_elicit(context, params):
            # While the question is open, an admin takes the agent's access away.
            await anyio.to_thread.run_sync(lambda: warden.cli("grant", "confirmer", "rec", "confirm", "deny"))
            return mcp.types.ElicitResult(action="accept", content={"ok": True})

        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=60)
        async with http, Client(streamable_http_client(warden.url, http_client=http), mode="legacy",
                                elicitation_callback=on_elicit) as client:
            return await client.call_tool("rec__confirm", {"note": "n"})

    r = anyio.run(main)
    assert r.is_error and "access changed while the call was waiting" in r.content[0].text, r
    assert len(received(record, "tools/call")) == 1, "the retry never reached the server"
    assert not [r for r in log(warden, "--agent", "bot") if r["kind"] == "tool_call.retried"]


def test_only_the_meta_the_protocol_defines_reaches_a_server(warden):
    """An agent's `_meta` is not recorded nor bound by an approval, so what
    else it carries must not reach the server: only a progress token (Warden's
    own in its place), the protocol's own keys, and a log level that is a
    level go on."""
    record = add_recorder(warden, "rec", "legacy")
    token = warden.add_agent("bot")
    warden.start()
    post = legacy_session(warden, token)
    secret = "exfil-" + str(time.time())
    r = post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "rec__plain", "arguments": {},
        "_meta": {"progressToken": "agent-token", "notes": secret,
                  "io.modelcontextprotocol/logLevel": secret}}})
    assert "result" in r, r
    r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "custom/report", "params": {
        "period": "q3", "_meta": {**MODERN_META, "notes": secret}}}, token, path="/servers/rec/mcp").json()
    assert "result" in r, r
    [call] = received(record, "tools/call")
    [report] = received(record, "custom/report")
    assert secret not in json.dumps(call) and secret not in json.dumps(report), (call, report)
    meta = call["params"].get("_meta", {})
    assert set(meta) == {"progressToken"} and meta["progressToken"] != "agent-token", meta
