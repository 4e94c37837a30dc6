"""How turns were routed, kept with each exchange: what the router reads back and the UI shows.

Contract (all on the store's database):
- ``record(exchange_id, route)`` stores the router's decision, reason and score for a turn;
  ``record_payload(exchange_id, body)`` the exact JSON body sent to the cloud (written before
  sending, so a turn that fails in the cloud still shows what left the device);
  ``record_note(exchange_id, note)`` why the turn ended up elsewhere than decided.
- ``last_auto(session_id)`` the decision and score of the conversation's latest scored turn;
  ``scored_turns(n)`` the household's latest n scored turns, oldest first: their difficulty
  scores and whether each was sent to the cloud (what the online budget threshold reads);
  ``cloud_exchange_ids(profile_id)`` the person's complete turns answered in the cloud (the
  semantic cache draws on these only).
"""

from __future__ import annotations

import json

import numpy as np

from assistant.store.store import Store


class RouteLog:
    def __init__(self, store: Store):
        self.store = store

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

    def scored_turns(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.store.rows("SELECT route_score, route_decision FROM exchanges WHERE route_score IS NOT NULL "
                               "ORDER BY id DESC LIMIT ?", (limit,))[::-1]
        return (np.array([r["route_score"] for r in rows], dtype=np.float64),
                np.array([r["route_decision"] == "cloud" for r in rows], dtype=bool))

    def cloud_exchange_ids(self, profile_id: int) -> list[int]:
        rows = self.store.rows("SELECT id FROM exchanges WHERE profile_id = ? AND route = 'cloud' AND status = 'complete'",
                               (profile_id,))
        return [r["id"] for r in rows]
