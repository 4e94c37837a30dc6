"""One chat turn's row, from the message to the reply: the one place that writes it.

Contract (all on the store's database):
- ``begin_exchange`` commits the user's message (status ``pending``) before anything is
  generated, so it survives a failed or interrupted reply; ``complete_exchange`` or
  ``fail_exchange`` commits the outcome; ``fail_interrupted`` closes the turns a crash left
  pending. ``record_identification`` and ``record_recall`` keep who the speaker was taken for
  and what recall put in front of the model.
- ``record(exchange_id, target, reason, score)`` stores the router's decision, reason and score;
  ``record_payload(exchange_id, body)`` the exact JSON body sent to the cloud (written before
  sending, so a turn that fails in the cloud still shows what left the device);
  ``record_note(exchange_id, note)`` why the turn ended up elsewhere than decided.
- ``last_auto(session_id)`` the decision and score of the conversation's latest scored turn;
  ``recent_scores(n)`` the latest n difficulty scores in the household;
  ``cloud_exchange_ids(profile_id)`` the person's complete turns answered in the cloud (the
  semantic cache draws on these only).
"""

from __future__ import annotations

import json

import numpy as np

from assistant.store.store import Exchange, GenerationStats, Store, _title, now


class TurnLog:
    def __init__(self, store: Store):
        self.store = store

    def begin_exchange(self, session_id: int, profile_id: int, user_text: str, context: list[str] = ()) -> int:
        """Commit the user's message (status ``pending``) and return the exchange id."""
        stamp = now()
        with self.store.transaction() as db:
            exchange_id = db.execute(
                """INSERT INTO exchanges (session_id, profile_id, user_text, context, status, created_at)
                   VALUES (?, ?, ?, ?, 'pending', ?)""",
                (session_id, profile_id, user_text, json.dumps(list(context)), stamp),
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

    def record(self, exchange_id: int, target: str, reason: str, score: float | None) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE exchanges SET route_decision = ?, route_reason = ?, route_score = ? WHERE id = ?",
                       (target, reason, score, exchange_id))

    def record_payload(self, exchange_id: int, body: dict) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE exchanges SET cloud_payload = ? WHERE id = ?",
                       (json.dumps(body, ensure_ascii=False), exchange_id))

    def record_note(self, exchange_id: int, note: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE exchanges SET route_note = ? WHERE id = ?", (note, exchange_id))

    def last_auto(self, session_id: int) -> tuple[str, float] | None:
        rows = self.store.rows(
            "SELECT route_decision, route_score FROM exchanges WHERE session_id = ? AND status = 'complete' "
            "AND route_score IS NOT NULL ORDER BY id DESC LIMIT 1", (session_id,))
        return (rows[0]["route_decision"], rows[0]["route_score"]) if rows else None

    def recent_scores(self, limit: int) -> np.ndarray:
        rows = self.store.rows("SELECT route_score FROM exchanges WHERE route_score IS NOT NULL ORDER BY id DESC LIMIT ?",
                               (limit,))
        return np.array([r["route_score"] for r in rows], dtype=np.float64)

    def cloud_exchange_ids(self, profile_id: int) -> list[int]:
        rows = self.store.rows("SELECT id FROM exchanges WHERE profile_id = ? AND route = 'cloud' AND status = 'complete'",
                               (profile_id,))
        return [r["id"] for r in rows]
