"""The SQL behind teaching the local model (``assistant.training.dialogues``).

``learnable_rows(store)``: every complete exchange with a reply a human wrote or a stronger model
gave, oldest first, with its person's name: imported history (``route = 'import'``), answers
from the cloud (``route = 'cloud'``) and replies a person corrected (``edited_at`` set). Never
the local model's own unedited replies. What may be learned is decided here, in one statement.
"""

from __future__ import annotations

from assistant.store.store import Store

LEARNABLE = """SELECT e.id, e.profile_id, p.name, e.user_text, e.reply, e.context, e.source, e.cluster,
       e.route, e.edited_at FROM exchanges e JOIN profiles p ON p.id = e.profile_id
       WHERE e.status = 'complete' AND COALESCE(e.reply, '') != ''
         AND (e.route IN ('import', 'cloud') OR e.edited_at IS NOT NULL)
       ORDER BY e.id"""


def learnable_rows(store: Store) -> list[dict]:
    return store.rows(LEARNABLE)
