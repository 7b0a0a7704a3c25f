"""What stands between a client and the server: the token, body-size limits, CORS and the API docs.

Kept apart from the routes so each guard is written once and applies to the REST API, the docs and the
mounted Gradio UI alike.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Multipart boundaries, headers and the `request` JSON part ride on top of the image bytes.
FORM_OVERHEAD_BYTES = 256 * 1024
bearer = HTTPBearer(auto_error=False, description="I2V_API_TOKEN, required when the server has one set")


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """The Authorization header only: a token in the query string would be written to access logs, and one in a
    cookie would ride along on cross-site requests (a form posting to /jobs/ID/cancel needs no preflight)."""
    token = request.app.state.service.settings.api_token
    if not token:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "missing or wrong API token: send 'Authorization: Bearer <I2V_API_TOKEN>'", headers={"WWW-Authenticate": "Bearer"})


def add_docs(app: FastAPI) -> None:
    """/docs, /redoc and /openapi.json behind the same token as the API (FastAPI's own routes take no dependency)."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_token)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="i2v API")

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(require_token)])
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="i2v API")


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Only the configured origins (I2V_CORS_ORIGINS) may call from a browser; with none, no CORS headers at all.

    Installing our own middleware also stops Gradio from adding its permissive one when the UI is mounted.
    """
    app.add_middleware(
        CORSMiddleware, allow_origins=origins, allow_credentials=bool(origins), allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )


class BodyLimit:
    """Refuse an oversized body before reading it (by Content-Length), and stop reading a chunked one at the limit.

    Without this, multipart parsing spools the whole body to disk before any handler can count it.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(declared) > self.limit:
                await _reply(send, 413, "upload_too_large", self._message(int(declared)))
                return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    await _reply(send, 413, "upload_too_large", self._message(None))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    def _message(self, declared: int | None) -> str:
        size = f"{declared} bytes" if declared is not None else "more than that"
        image_limit = self.limit - FORM_OVERHEAD_BYTES
        return f"request body is {size}; the limit is {self.limit} bytes (an image of at most {image_limit} bytes, I2V_MAX_UPLOAD_BYTES)"


async def _reply(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"detail": detail, "code": code, "errors": []}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


#: What the UI may hand out from the outputs folder: the clips, their thumbnails and live previews (animated WebP),
#: never the metadata JSON (it names server paths; the API serves a cleaned copy).
MEDIA_SUFFIXES = frozenset({".mp4", ".webm", ".gif", ".jpg", ".webp"})
#: The route that serves a file named in its path, checked by `GradioGuard._servable`.
SERVABLE_ROUTE = "/gradio_api/file={path_or_url:path}"
#: Every other route of the mounted Gradio app (6.31) that i2v lets through, by why it is safe. Gradio's own
#: frontend files come from its package folder (joined safely), never from a client-named path.
ALLOWED_ROUTES = {
    "page": {
        "/", "/config", "/config/", "/login", "/login/", "/logout", "/gradio_api/user", "/gradio_api/user/",
        "/gradio_api/login_check", "/gradio_api/login_check/", "/gradio_api/token", "/gradio_api/token/",
        "/gradio_api/app_id", "/gradio_api/app_id/", "/gradio_api/info", "/gradio_api/info/", "/gradio_api/openapi.json",
        "/gradio_api/startup-events",
    },
    "gradio's own frontend files": {
        "/static/{path:path}", "/assets/{path:path}", "/svelte/{path:path}", "/favicon.ico", "/theme.css",
        "/gradio_api/theme.css", "/robots.txt", "/pwa_icon", "/pwa_icon/{size}", "/manifest.json",
    },
    "the UI's calls": {
        "/gradio_api/queue/join", "/gradio_api/queue/data", "/gradio_api/queue/status", "/gradio_api/heartbeat/{session_hash}",
        "/gradio_api/cancel", "/gradio_api/reset", "/gradio_api/reset/", "/gradio_api/upload", "/gradio_api/upload_progress",
        "/gradio_api/call/{api_name}", "/gradio_api/call/{api_name}/", "/gradio_api/call/{api_name}/{event_id}",
        "/gradio_api/call/v2/{api_name}", "/gradio_api/call/v2/{api_name}/", "/gradio_api/call/v2/{api_name}/{event_id}",
        "/gradio_api/api/{api_name}", "/gradio_api/api/{api_name}/", "/gradio_api/run/{api_name}", "/gradio_api/run/{api_name}/",
    },
}
#: Gradio routes i2v turns off, and why: each serves files or runs code the page never needs. Listed so that the
#: route-table test can tell a route read and refused from one a Gradio upgrade added (which is refused too).
REFUSED_ROUTES = {
    "/gradio_api/file/{path:path}": "a second spelling of file= (it served the metadata JSON, server paths included)",
    "/gradio_api/proxy={url_path:path}": "relays another server's files",
    "/gradio_api/stream/{event_id}": "streaming inputs; the page has none",
    "/gradio_api/stream/{event_id}/close": "streaming inputs; the page has none",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8": "serves streamed media files",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/{segment_id}.{ext}": "serves streamed media files",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist-file": "serves streamed media files",
    "/gradio_api/runs": "Gradio's run history (inputs and outputs of every call)",
    "/gradio_api/runs/": "Gradio's run history",
    "/gradio_api/run-history/connect": "Gradio's run history",
    "/gradio_api/run-history/buckets": "Gradio's run history",
    "/gradio_api/run-history/records": "Gradio's run history",
    "/gradio_api/run-history/records/{endpoint}/{record_id}/assets/{asset_id}": "serves run-history files",
    "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}": "serves custom components' files; the page has none",
    "/gradio_api/component_server": "server functions of components the page has none of (file explorer, editors)",
    "/gradio_api/component_server/": "server functions of components the page has none of",
    "/gradio_api/process_recording": "converts recorded media; the page records nothing",
    "/gradio_api/deep_link": "deep links; the page offers none",
    "/gradio_api/dev/reload": "reload mode for developing Gradio apps",
    "/gradio_api/vibe-edit": "edits the app's code", "/gradio_api/vibe-edit/": "edits the app's code",
    "/gradio_api/undo-vibe-edit": "edits the app's code", "/gradio_api/undo-vibe-edit/": "edits the app's code",
    "/gradio_api/vibe-code": "the app's code", "/gradio_api/vibe-code/": "the app's code",
    "/gradio_api/vibe-starter-queries": "the app's code", "/gradio_api/vibe-starter-queries/": "the app's code",
    "/monitoring": "Gradio's analytics dashboard", "/monitoring/summary": "Gradio's analytics dashboard",
    "/monitoring/{key}": "Gradio's analytics dashboard",
}


def route_table(app: ASGIApp, prefix: str = "") -> list[tuple[str, frozenset[str], ASGIApp]]:
    """Every route of an app as (path template, methods, the app that registered it), mounts and included routers
    flattened, in the order Starlette tries them."""
    table: list[tuple[str, frozenset[str], ASGIApp]] = []
    for route in getattr(app, "routes", None) or []:
        included = getattr(route, "original_router", None)  # FastAPI keeps an included router's routes apart
        if included is not None:
            table += [(path, methods, app) for path, methods, _ in route_table(included, prefix + route.include_context.prefix)]
        elif isinstance(route, Mount):
            table += route_table(route.app, prefix + route.path)
        elif hasattr(route, "path"):
            table.append((prefix + route.path, frozenset(getattr(route, "methods", None) or ()), app))
    return table


class GradioGuard:
    """Narrows the mounted Gradio app to what i2v serves, at our edge, whatever Gradio allows by default:

    - only the routes in ALLOWED_ROUTES pass; every other route Gradio registers is refused, those in
      REFUSED_ROUTES and any a Gradio upgrade adds alike (each request is matched as Starlette will route it);
    - `/gradio_api/file=PATH` serves only Gradio's own upload cache and the clips, thumbnails and live previews
      in the outputs folder, and never relays a remote URL;
    - a call whose inputs name a file by URL (a FileData `path` of http(s)://…, or an inline data: URL) is
      refused, where Gradio would download or decode it on the server's behalf, and so is one naming a server
      file that is neither an upload nor a clip, with a line saying so.
    """

    def __init__(self, app: ASGIApp, *, served: ASGIApp, gradio: ASGIApp, cache: Path, outputs: Path):
        """`served` is the whole app (its own routes come before the mounted `gradio` app's)."""
        self.app = app
        self.cache = Path(os.path.realpath(cache))
        self.outputs = Path(os.path.realpath(outputs))
        allowed = set().union(*ALLOWED_ROUTES.values(), {SERVABLE_ROUTE})
        self.routes = [
            (template, compile_path(template)[0], methods, owner is not gradio or template in allowed)
            for template, methods, owner in route_table(served)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = self._route(path, scope["method"])
        if route is not None:
            template, found, allowed = route
            if not allowed or (template == SERVABLE_ROUTE and not self._servable(found["path_or_url"])):
                await _reply(send, 403, "forbidden", "the UI serves only its page, its calls, its uploads and the finished clips")
                return
        if scope["method"] == "POST" and path.startswith("/gradio_api/") and not path.startswith("/gradio_api/upload"):
            body = await _read_body(receive)
            refusal = self._file_refusal(body)
            if refusal:
                await _reply(send, 422, "invalid_input", refusal)
                return
            receive = _replay(body)
        await self.app(scope, receive, send)

    def _route(self, path: str, method: str) -> tuple[str, dict[str, str], bool] | None:
        """The Gradio route Starlette will hand this request to (the first whose path and method match; HEAD as
        GET), or, where only the path matches, the first such; None for a path no Gradio route takes."""
        by_path = None
        for template, regex, methods, allowed in self.routes:
            found = regex.match(path)
            if found is None:
                continue
            if not methods or method in methods or (method == "HEAD" and "GET" in methods):
                return template, found.groupdict(), allowed
            by_path = by_path or (template, found.groupdict(), allowed)
        return by_path

    def _file_refusal(self, body: bytes) -> str | None:
        """Why a call's inputs may not name the files they name: by URL (Gradio would download it for the server),
        inline as a data: URL (Gradio decodes those itself, whatever their size), or a server file that is neither
        an upload nor a clip (Gradio refuses that too, but in words that never reach the page)."""
        for path, url in _file_inputs(body):
            if path.strip().lower().startswith(("http://", "https://", "//")) or url.strip().lower().startswith("data:"):
                return "files must be uploaded through the UI, not named by URL"
            if not self._servable(path):
                return "files must be uploaded through the UI first: this call names a file on the server that is not one"
        return None

    def _servable(self, requested: str) -> bool:
        if "://" in requested or requested.startswith("//"):
            return False  # Gradio would fetch and relay a remote URL: an open proxy the UI never needs
        real = Path(os.path.realpath(requested))
        if real.is_relative_to(self.cache):
            return True
        return real.is_relative_to(self.outputs) and real.suffix.lower() in MEDIA_SUFFIXES


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _file_inputs(body: bytes) -> list[tuple[str, str]]:
    """(path, url) of each FileData-like object (a dict with a string `path`) anywhere in a JSON body."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return []
    found, stack = [], [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str):
                found.append((item["path"], item.get("url") if isinstance(item.get("url"), str) else ""))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
