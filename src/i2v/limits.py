"""Text bounds every edge shares: the longest prompt, and how much of a client's own value a message quotes back.

On the ground floor (below `request.py` and the advice record), so both can bound their text without importing
each other."""

from __future__ import annotations

#: Longest prompt (and negative prompt) accepted anywhere: CLI, API, UI.
MAX_PROMPT_CHARS = 2000
#: How much of a client's own value an error message quotes back.
ECHO_CHARS = 80


def echo(value: object) -> str:
    """A client's value quoted in an error message, cut short: errors never send a large input back."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"
