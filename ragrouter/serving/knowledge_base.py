"""A served router's knowledge base kept live: outcomes that any process or replica records in
the shared feedback log are remembered by every router that reads it, without retraining."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ragrouter.routers.base import Queries, Router
from ragrouter.serving.feedback import FeedbackStore, Outcome


class LiveKnowledgeBase:
    """What `router` retrieves from: its training queries, plus every outcome in `store`
    created at or after `since` (unix seconds).

    `record` appends outcomes to the shared log; `sync` has the router remember what anyone
    appended since its last sync. A new instance (a restarted process) reads the log from the
    start, so it replays all of it and loses nothing. `since` keeps outcomes from counting
    twice: the gateway passes the served version's creation time, because what was logged
    before then is in that version's training data (the log is a training source).

    Not thread-safe, by design: `sync` changes the router, so the one thread that scores
    calls it between batches.
    """

    def __init__(self, router: Router, store: FeedbackStore, since: float = 0.0):
        self.router, self.store, self.since = router, store, since
        self._cursor = 0
        self._learns = router.remember(Queries([]), np.zeros(0))  # no queries: changes nothing, says whether it learns

    @property
    def learns(self) -> bool:
        """Whether the router remembers outcomes (it retrieves labelled queries); if not, `sync` adds nothing."""
        return self._learns

    @property
    def size(self) -> int:
        """How many labelled queries the router retrieves from now."""
        return self.router.knowledge_size

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Append outcomes to the shared log (every knowledge base on it remembers them at its next sync)."""
        self.store.append(outcomes)

    def sync(self) -> int:
        """Remember the outcomes appended since the last sync (those created at or after
        `since`); returns how many were added. The cursor moves only once they are remembered."""
        if not self._learns:
            return 0
        outcomes, cursor = self.store.read_since(self._cursor)
        new = [outcome for outcome in outcomes if outcome.created_at >= self.since]
        if new:
            self.router.remember(Queries([outcome.prompt for outcome in new]), np.array([outcome.gain for outcome in new]))
        self._cursor = cursor
        return len(new)
