"""Files made from people's data outside the data directory, and who they were made for.

The web app writes exports, archives and charts for download, and Gradio keeps a copy of every
file it serves and every file uploaded to it. They all live under one folder per data
directory (``Settings.copies_dir``): ``files/<login>/`` for what the app writes and ``served/``
for Gradio's copies (the app points ``GRADIO_TEMP_DIR`` there). ``made.json`` records, for each
file the app wrote, the login it was made for and the people whose data it holds.

Contract of ``Copies(root)``:
- ``new_file(login, people, name)`` is a fresh path (a random prefix keeps names unguessable
  and unique) under the login's folder, recorded as made from ``people`` for ``login``.
- ``owner(name)`` is the login a file of that name (or a Gradio copy of it) was made for, None
  for a file it did not make.
- ``remove_for(people)`` deletes every file made from any of these people's data, with all of
  Gradio's copies of it (forgetting, deleting or editing them calls it; any process can, the
  record is on disk); ``credit(source, target)`` records a merge; ``discard(path)`` deletes an
  upload once it has been read (it holds someone's words); ``clear()`` deletes everything (a
  server starting or stopping: nothing outlives the server that made it).
"""

from __future__ import annotations

import json
import secrets
import shutil
import threading
from pathlib import Path

from assistant.files import written_atomically


class Copies:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()

    @property
    def served_dir(self) -> Path:
        """Where Gradio keeps its copies (``GRADIO_TEMP_DIR``)."""
        return self.root / "served"

    @property
    def _record(self) -> Path:
        return self.root / "made.json"

    def _read(self) -> dict[str, dict]:
        try:
            return json.loads(self._record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _write(self, made: dict[str, dict]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with written_atomically(self._record) as temp:
            temp.write_text(json.dumps(made), encoding="utf-8")

    def new_file(self, login: str, people, name: str) -> Path:
        folder = self.root / "files" / _safe(login)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{secrets.token_hex(8)}-{name}"
        with self._lock:
            made = self._read()
            made[path.name] = {"login": login, "people": sorted({int(p) for p in people}), "path": str(path)}
            self._write(made)
        return path

    def owner(self, name: str) -> str | None:
        entry = self._read().get(Path(name).name)
        return entry["login"] if entry else None

    def remove_for(self, people) -> int:
        """Delete every file made from these people's data and Gradio's copies; how many files went."""
        wanted = {int(p) for p in people}
        with self._lock:
            made = self._read()
            gone = [name for name, entry in made.items() if wanted & set(entry["people"])]
            removed = sum(self._delete(name, made.pop(name)["path"]) for name in gone)
            if gone:
                self._write(made)
        return removed

    def credit(self, source: int, target: int) -> None:
        with self._lock:
            made = self._read()
            for entry in made.values():
                if source in entry["people"]:
                    entry["people"] = sorted((set(entry["people"]) - {source}) | {target})
            self._write(made)

    def discard(self, path) -> None:
        """Delete an upload Gradio kept (and its folder, when it is one of Gradio's)."""
        path = Path(path)
        path.unlink(missing_ok=True)
        if path.parent.parent == self.served_dir and not any(path.parent.iterdir()):
            path.parent.rmdir()

    def clear(self) -> None:
        for part in ("files", "served"):
            shutil.rmtree(self.root / part, ignore_errors=True)
        self._record.unlink(missing_ok=True)

    def _delete(self, name: str, path: str) -> int:
        copies = [Path(path)] + (list(self.served_dir.glob(f"*/{name}")) if self.served_dir.is_dir() else [])
        count = 0
        for copy in copies:
            if copy.exists():
                copy.unlink()
                count += 1
            if copy.parent.parent == self.served_dir and not any(copy.parent.iterdir()):
                copy.parent.rmdir()  # Gradio's folder for that copy, now empty
        return count


def _safe(login: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in login)[:60] or "household"
