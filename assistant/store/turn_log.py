"""One chat turn's row, from the message to the reply: the one place that writes it.

Contract (all on the store's database):
- ``begin_exchange`` commits the user's message (status ``pending``) before anything is
  generated, so it survives a failed or interrupted reply; ``complete_exchange`` or
  ``fail_exchange`` commits the outcome; ``fail_interrupted`` closes the turns a crash left
  pending. ``record_identification`` and ``record_recall`` keep who the speaker was taken for
  and what recall put in front of the model.
- The route's columns (decision, reason, score, the cloud payload, the note) and the reads the
  router makes of them are ``RouteLog``'s (``route_log.py``), which ``TurnLog`` extends: the
  pipeline, the router and the cloud wrapper share one ``TurnLog``.
"""

from __future__ import annotations

import json

from assistant.store import context_turns
from assistant.store.route_log import RouteLog
from assistant.store.store import Exchange, GenerationStats, _title, now


class TurnLog(RouteLog):
    """Every write of a chat turn's row: these, and the route's (``RouteLog``)."""

    def begin_exchange(self, session_id: int, profile_id: int, user_text: str, context: list = ()) -> int:
        """Commit the user's message (status ``pending``) and return the exchange id."""
        stamp = now()
        with self.store.transaction() as db:
            exchange_id = db.execute(
                """INSERT INTO exchanges (session_id, profile_id, user_text, context, status, created_at)
                   VALUES (?, ?, ?, ?, 'pending', ?)""",
                (session_id, profile_id, user_text, context_turns.encode(context), stamp),
            ).lastrowid
            db.execute(
                "UPDATE sessions SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                (stamp, _title(user_text), session_id),
            )
        return exchange_id

    def complete_exchange(self, exchange_id: int, reply: str, stats: GenerationStats) -> Exchange:
        with self.store.transaction() as db:
            db.execute(
                """UPDATE exchanges SET reply = ?, status = 'complete', error = NULL, route = ?, model = ?, ttft_ms = ?,
                   tokens = ?, tokens_per_s = ?, completed_at = ? WHERE id = ?""",
                (reply, stats.route, stats.model, stats.ttft_ms, stats.tokens, stats.tokens_per_s, now(), exchange_id),
            )
        return self.store.exchange(exchange_id)

    def fail_interrupted(self, error: str) -> int:
        """Close the turns a crash left ``pending`` (their message stays, marked failed); returns how many.

        A turn still running in another process on this database is not lost: its
        ``complete_exchange`` marks it complete again."""
        with self.store.transaction() as db:
            return db.execute("UPDATE exchanges SET status = 'failed', error = ?, completed_at = ? WHERE status = 'pending'",
                              (error, now())).rowcount

    def fail_exchange(self, exchange_id: int, error: str, partial_reply: str = "") -> Exchange:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE exchanges SET status = 'failed', error = ?, reply = ?, completed_at = ? WHERE id = ?",
                (error, partial_reply or None, now(), exchange_id),
            )
        return self.store.exchange(exchange_id)

    def record_identification(self, exchange_id: int, profile_id: int, confidence: float) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE exchanges SET identified_as = ?, identify_confidence = ? WHERE id = ?",
                (profile_id, confidence, exchange_id),
            )

    def record_recall(self, exchange_id: int, recalled: dict) -> None:
        """What recall put in front of the model for this exchange (shown under the reply)."""
        with self.store.transaction() as db:
            db.execute("UPDATE exchanges SET recalled = ? WHERE id = ?", (json.dumps(recalled), exchange_id))
