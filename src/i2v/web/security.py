"""What stands between a client and the server: the Host and Origin rules, security headers, the token and its
login limit, body-size limits, CORS and the API docs.

Kept apart from the routes so each guard is written once and applies to the REST API, the docs and the
mounted Gradio UI alike.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import secrets
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.request import echo

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


#: Host names a loopback server answers to (any port); I2V_ALLOWED_HOSTS adds more.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Methods a cross-site page must not send: a form posts without a preflight, and the server would act on it.
STATE_CHANGING = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})
#: Sent on every response: no framing by other sites (clickjacking), no content sniffing, no paths in Referer.
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
FRAME_POLICY = (b"content-security-policy", b"frame-ancestors 'none'")
#: Wrong tokens (at the UI's login or as a Bearer header) one client address may send per window.
LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 60.0
LOGIN_PATHS = frozenset({"/login", "/login/"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header's name (lower case, no brackets or trailing dot) and port; None when it is not one."""
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") or not rest else None
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name, port = value, ""  # a bare name, or a bare IPv6 address
    if port is None or port and not port.isdigit():
        return None
    name = name.rstrip(".").lower()
    return (name, int(port) if port else None) if name else None


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """Scheme, host and port of an Origin (or a Referer's origin); None for `null` and anything not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.rstrip("."), port or DEFAULT_PORTS[parts.scheme]


class EdgeGuard:
    """What a request must pass before any route sees it (pure ASGI, outermost):

    - its Host must be one this server answers to (else 421): on a loopback bind the loopback names plus
      I2V_ALLOWED_HOSTS, so a DNS-rebinding page cannot become same-origin with the server. A non-loopback bind
      has a token; there any Host is accepted unless I2V_ALLOWED_HOSTS lists the names (plus the bind address);
    - a state-changing request that names an Origin (or, without one, a Referer) must come from the server's own
      origin (same host and port as its Host, which passed the rule above) or from I2V_CORS_ORIGINS (else 403):
      any page can make a browser post a form here. Clients that send neither header (CLI, curl) pass;
    - a client address that sent LOGIN_FAILURES wrong tokens within the window gets 429 on its next try;
    - every response carries the security headers, and a cookie Gradio sets with SameSite=None gets Lax.
    """

    def __init__(self, app: ASGIApp, *, bind: str, allowed_hosts: list[str], origins: list[str], token: bool):
        self.app = app
        if not is_loopback(bind) and token and not allowed_hosts:
            self.hosts: list[str] | None = None
        else:
            named = [found[0] for host in [bind, *allowed_hosts] if (found := split_host(host))]
            self.hosts = list(dict.fromkeys([*LOOPBACK_HOSTS, *(name for name in named if name not in ("0.0.0.0", "::"))]))
        self.origins = {found for origin in origins if (found := origin_of(origin))}
        self.token = token
        self.failures: dict[str, deque[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refusal = self._host_refusal(headers.get(b"host")) or self._origin_refusal(scope, headers)
        if scope["type"] == "websocket":
            if refusal:
                await send({"type": "websocket.close", "code": 1008})  # before accept: the server answers 403
            else:
                await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        counted = self.token and (scope["path"] in LOGIN_PATHS and scope["method"] == "POST" or b"authorization" in headers)

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if counted:
                    self._count(client, message["status"], scope["path"] in LOGIN_PATHS)
                message = {**message, "headers": _secured(message.get("headers") or [])}
            await send(message)

        if not refusal and counted and (wait := self._locked_for(client)):
            counted = False  # a refused try is not another failure: the lock-out does not grow
            detail = f"too many wrong tokens from this address: try again in {wait} s"
            refusal = 429, "too_many_attempts", detail, [(b"retry-after", str(wait).encode())]
        if refusal:
            await _reply(secured_send, *refusal)
        else:
            await self.app(scope, receive, secured_send)

    def _host_refusal(self, host: bytes | None) -> tuple[int, str, str] | None:
        if self.hosts is None or host is None:
            return None  # HTTP/1.0 without a Host: not a browser
        found = split_host(host.decode("latin-1"))
        if found and found[0] in self.hosts:
            return None
        names = ", ".join(f"[{name}]" if ":" in name else name for name in self.hosts)
        return 421, "host_not_allowed", f"this server does not answer to the host {echo(host.decode('latin-1'))}, only to {names}: add the name to I2V_ALLOWED_HOSTS"

    def _origin_refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        if scope["type"] == "http" and scope["method"].encode() not in STATE_CHANGING:
            return None
        # An Origin header that is there but empty is not "no Origin": it falls to the refusal, not to the Referer.
        named = headers[b"origin"] if b"origin" in headers else headers.get(b"referer")
        if named is None:
            return None  # not sent by a browser page (the CLI, curl, scripts)
        text = named.decode("latin-1")
        origin = origin_of(text)
        if origin and (origin in self.origins or self._own(origin, headers.get(b"host"))):
            return None
        shown = f"{origin[0]}://{origin[1]}{'' if origin[2] == DEFAULT_PORTS[origin[0]] else f':{origin[2]}'}" if origin else echo(text)
        return 403, "cross_site", f"refused a request from the page at {shown}: only this server's own pages and I2V_CORS_ORIGINS may send it"

    def _own(self, origin: tuple[str, str, int], host: bytes | None) -> bool:
        """Same host and port as the Host header (already checked against the allowed names): a proxy in front
        may speak https on 443 for the server's http, so a Host without a port takes the Origin's scheme's."""
        found = split_host(host.decode("latin-1")) if host else None
        return found is not None and origin[1] == found[0] and origin[2] == (found[1] or DEFAULT_PORTS[origin[0]])

    def _locked_for(self, client: str) -> int:
        """Seconds until `client` may try a token again (0: now)."""
        failures = self.failures.get(client)
        if failures is None or len(failures) < LOGIN_FAILURES:
            return 0
        left = LOGIN_WINDOW_SECONDS - (time.monotonic() - failures[0])
        return math.ceil(left) if left > 0 else 0

    def _count(self, client: str, status: int, login: bool) -> None:
        """A wrong token's answer counts against its address; a right one does not wipe the count (a guesser
        sharing an address, a proxy's, with a user of the API would otherwise get five more tries each time)."""
        if status == 401 or login and status == 400:
            now = time.monotonic()
            if len(self.failures) > 10_000:  # forget addresses whose last failure left the window
                self.failures = {key: value for key, value in self.failures.items() if now - value[-1] < LOGIN_WINDOW_SECONDS}
            self.failures.setdefault(client, deque(maxlen=LOGIN_FAILURES)).append(now)


def _secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers with ours, and Gradio's SameSite=None login cookie made Lax (it never needs to ride
    along on another site's requests: the page may not be framed)."""
    ours = {name for name, _ in SECURITY_HEADERS}
    kept = [(name, value) for name, value in headers if name.lower() not in ours]
    secured = []
    for name, value in kept:
        if name.lower() == b"set-cookie":
            value = b"; ".join(b"SameSite=Lax" if part.strip().lower() == b"samesite=none" else part for part in value.split(b"; "))
        secured.append((name, value))
    if not any(name.lower() == FRAME_POLICY[0] for name, _ in secured):
        secured.append(FRAME_POLICY)
    return [*secured, *SECURITY_HEADERS]


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


async def _reply(send: Send, status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail, "code": code, "errors": []}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close"), *headers]
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
