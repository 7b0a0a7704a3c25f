"""LLM refinements cached and logged in SQLite, so the same text + image never costs a second call and every
answer can be looked at later. Keys are hashes of (text, image, preset, endpoint, model); no API key is stored."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from i2v.refine.base import RefinedPrompt


class RefinementCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS refinements ("
                " key TEXT PRIMARY KEY, text TEXT NOT NULL, source TEXT NOT NULL, result TEXT NOT NULL, created TEXT NOT NULL)"
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5)
        try:
            with db:  # commits on success
                yield db
        finally:
            db.close()

    def get(self, key: str) -> RefinedPrompt | None:
        row = self.get_json(key)
        return RefinedPrompt.model_validate_json(row) if row else None

    def put(self, key: str, text: str, result: RefinedPrompt) -> None:
        self.put_json(key, text, result.source, result.model_dump_json())

    def get_json(self, key: str) -> str | None:
        """Any validated LLM answer stored under `key` (the advisor's image judgement shares this table)."""
        with self._lock, self._connect() as db:
            row = db.execute("SELECT result FROM refinements WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put_json(self, key: str, text: str, source: str, result: str) -> None:
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO refinements VALUES (?, ?, ?, ?, ?)",
                (key, text, source, result, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )

    @classmethod
    def default(cls) -> RefinementCache:
        from i2v.paths import data_dir

        return cls(data_dir() / "refine.sqlite")
