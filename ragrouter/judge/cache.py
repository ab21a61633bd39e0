"""The judge's verdicts kept in a SQLite file, so that asking the same question twice costs nothing.

The key is a hash of the judge's identity (model, where it runs, how it generates) and the full
prompt, which holds the question, the response(s), the reference and, for pairwise grading, the
order of the two answers. A verdict is written as soon as it arrives: an interrupted run keeps
what it paid for.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ragrouter.judge.prompts import JudgePrompt


@dataclass(frozen=True)
class Reply:
    """A judge's answer and the tokens it cost (0 where the back-end does not say)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def verdict_key(identity: str, prompt: JudgePrompt) -> str:
    payload = json.dumps([identity, prompt.system, prompt.user, prompt.verdict_prefix], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    """A key -> Reply table in one SQLite file, safe to use from the judge's worker threads."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL)"
        )
        self._db.commit()

    def get(self, key: str) -> Reply | None:
        with self._lock:
            row = self._db.execute("SELECT text, prompt_tokens, completion_tokens FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else Reply(*row)

    def put(self, key: str, reply: Reply) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)", (key, reply.text, reply.prompt_tokens, reply.completion_tokens)
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        self._db.close()
