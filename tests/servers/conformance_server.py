"""An MCP server, written for Warden's tests on the official Python SDK, that
offers the fixtures the MCP conformance suite's server scenarios call
(test_simple_text, test://static-text, test_simple_prompt, ...).

The suite's npm package carries the scenarios but not its reference server, so
this stands in for it behind Warden. It runs over stdio:
    python conformance_server.py
"""

from __future__ import annotations

import asyncio
import base64
import json

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import InputRequiredResult
from mcp.types import (
    AudioContent,
    Completion,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)

# A 1x1 PNG and a tiny WAV, built here.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
    )
).decode()
WAV = base64.b64encode(
    b"RIFF" + (36 + 2).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    + b"data" + (2).to_bytes(4, "little") + b"\x00\x00"
).decode()

server = MCPServer("warden-conformance-fixture")


@server.tool()
def test_simple_text() -> list[TextContent]:
    """Returns one text item."""
    return [TextContent(type="text", text="This is a simple text response for testing.")]


@server.tool()
def test_image_content() -> list[ImageContent]:
    """Returns a 1x1 PNG."""
    return [ImageContent(type="image", data=PNG, mimeType="image/png")]


@server.tool()
def test_audio_content() -> list[AudioContent]:
    """Returns a tiny WAV."""
    return [AudioContent(type="audio", data=WAV, mimeType="audio/wav")]


@server.tool()
def test_embedded_resource() -> list[EmbeddedResource]:
    """Returns an embedded text resource."""
    return [
        EmbeddedResource(
            type="resource",
            resource=TextResourceContents(
                uri="test://embedded-resource", mimeType="text/plain", text="This is an embedded resource content."
            ),
        )
    ]


@server.tool()
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Returns text, an image and a resource."""
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG, mimeType="image/png"),
        EmbeddedResource(
            type="resource",
            resource=TextResourceContents(
                uri="test://mixed-content-resource",
                mimeType="application/json",
                text=json.dumps({"test": "data", "value": 123}),
            ),
        ),
    ]


@server.tool()
def test_error_handling() -> str:
    """Always fails."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@server.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50, 100 of 100."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100)
        await asyncio.sleep(0.05)
    return "Progress tool completed"


@server.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Logs three info messages while it runs."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(message)
        await asyncio.sleep(0.05)
    return "Logging tool completed"


# Server-to-client requests, 2026-07-28 style: the tool answers the first
# round with input_required and finishes when the client retries with answers.
def ask(ctx: Context, method: str, params: dict) -> InputRequiredResult | dict | None:
    answers = ctx.input_responses
    if not answers or "q" not in answers:
        return InputRequiredResult(input_requests={"q": {"method": method, "params": params}})
    answer = answers["q"]
    return answer.model_dump(by_alias=True, exclude_none=True) if hasattr(answer, "model_dump") else answer


def elicited(ctx: Context, message: str, schema: dict, prefix: str):
    got = ask(ctx, "elicitation/create", {"message": message, "requestedSchema": schema})
    if isinstance(got, InputRequiredResult):
        return got
    return [TextContent(type="text", text=f"{prefix}action={got.get('action')}, content={json.dumps(got.get('content'))}")]


@server.tool()
async def test_sampling(prompt: str, ctx: Context):
    """Asks the client's model to answer a prompt."""
    got = ask(ctx, "sampling/createMessage", {
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": 100,
    })
    if isinstance(got, InputRequiredResult):
        return got
    return [TextContent(type="text", text=f"LLM response: {got.get('content', {}).get('text', '')}")]


@server.tool()
async def test_elicitation(message: str, ctx: Context):
    """Asks the user for a username and email."""
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    return elicited(ctx, message, schema, "User response: ")


@server.tool()
async def test_elicitation_sep1034_defaults(ctx: Context):
    """Asks for values of every primitive type, each with a default."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": True},
        },
    }
    return elicited(ctx, "Please review these values", schema, "Elicitation completed: ")


@server.tool()
async def test_elicitation_sep1330_enums(ctx: Context):
    """Asks with every kind of enum schema."""
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                           "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"},
            ]}},
        },
    }
    return elicited(ctx, "Please choose", schema, "Elicitation completed: ")


@server.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs one message (2026-07-28 clients see it only if they asked for logs)."""
    await ctx.info("test_logging_tool ran")
    return "logged"


@server.tool()
async def test_streaming_elicitation(ctx: Context):
    """Asks for input the 2026-07-28 way, never with a request of its own."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    return elicited(ctx, "Please answer", schema, "Elicitation completed: ")


@server.tool()
async def test_missing_capability(ctx: Context) -> str:
    """Needs sampling and refuses, as the spec says, when it is not declared."""
    caps = ctx.client_capabilities
    if caps is None or caps.sampling is None:
        raise MCPError(
            code=-32021,
            message="this tool needs the sampling capability",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return "the client declared sampling"


@server.tool()
async def test_trigger_tool_change(ctx: Context) -> str:
    """Adds the tool `added_later` and tells clients the list changed."""

    def added_later() -> str:
        """A tool that appeared after the server started."""
        return "I am new"

    server.add_tool(added_later)
    await ctx.notify_tools_changed()
    return "added a tool"


@server.resource("test://static-text", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@server.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    return base64.b64decode(PNG)


@server.resource("test://watched-resource", mime_type="text/plain")
def watched() -> str:
    return "A resource clients may subscribe to."


@server.resource("test://template/{id}/data", mime_type="application/json")
def template(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@server.prompt()
def test_simple_prompt() -> str:
    """A prompt with no arguments."""
    return "This is a simple prompt for testing."


@server.prompt()
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt that uses two arguments."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@server.prompt()
def test_prompt_with_embedded_resource(resourceUri: str) -> list:
    """A prompt that embeds a resource."""
    return [
        {
            "role": "user",
            "content": {
                "type": "resource",
                "resource": {"uri": resourceUri, "mimeType": "text/plain", "text": "Embedded resource content for testing."},
            },
        },
        {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}},
    ]


@server.prompt()
def test_prompt_with_image() -> list:
    """A prompt with an image."""
    return [
        {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
        {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}},
    ]


@server.completion()
async def complete(ref, argument, context) -> Completion:
    options = ["paris", "park", "party"]
    return Completion(values=[o for o in options if o.startswith(argument.value)], total=len(options), hasMore=False)


if __name__ == "__main__":
    server.run("stdio")
