"""How a message or a log line names a URL: scheme, host (and port) and path, never what can carry a secret."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str, *, host_required: bool = True) -> str | None:
    """`url` without its user name and password (`user:pass@`), query (`?api-key=`, `?password=`) and fragment,
    which can all carry credentials; None for a text that is not such a URL (it may be a secret pasted by mistake),
    so the caller says what was wrong instead. `host_required=False` also names a socket URL (`unix:///run/x.sock`)."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, an unclosed "["
        return None
    if not parts.scheme or not (host or (not host_required and parts.path)):
        return None
    if not host:
        return f"{parts.scheme}://{parts.path}"  # urlunsplit would drop the empty authority's "//"
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, netloc if port is None else f"{netloc}:{port}", parts.path, "", ""))
