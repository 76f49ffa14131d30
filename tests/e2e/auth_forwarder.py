"""A client-side stand-in for test suites that cannot send a credential.

Listens on 127.0.0.1, adds `Authorization: Bearer <agent credential>` to every
request and passes it to Warden unchanged otherwise: method, body, and every
header, including a foreign Host or Origin (so DNS-rebinding checks still see
what the suite sent). Only Host and Origin that name this forwarder itself are
rewritten to name Warden, as they would if the suite spoke to Warden directly.
Responses, SSE included, stream back as they arrive.

Usage: python auth_forwarder.py PORT TARGET_BASE_URL  (credential on stdin)
"""

from __future__ import annotations

import sys

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"}


def build(port: int, target: str, token: str) -> Starlette:
    target_host = target.split("://", 1)[1].split("/", 1)[0]
    own = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    client = httpx2.AsyncClient(timeout=None)

    async def forward(request: Request):
        headers = []
        for k, v in request.headers.raw:
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            if name in HOP or name == "authorization":
                continue
            if name == "host" and value.lower() in own:
                value = target_host
            if name == "origin":
                for o in own:
                    if value.lower() == f"http://{o}":
                        value = f"http://{target_host}"
            headers.append((name, value))
        headers.append(("authorization", f"Bearer {token}"))
        body = await request.body()
        url = target + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        upstream = await client.send(
            client.build_request(request.method, url, headers=headers, content=body), stream=True
        )
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}

        async def body_iter():
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(body_iter(), status_code=upstream.status_code, headers=out_headers)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE", "PUT", "PATCH"])])


if __name__ == "__main__":
    port, target = int(sys.argv[1]), sys.argv[2].rstrip("/")
    token = sys.stdin.readline().strip()
    uvicorn.run(build(port, target, token), host="127.0.0.1", port=port, log_level="warning")
