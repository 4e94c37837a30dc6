"""Writing a file so that a crash leaves the old version or the new one, never a torn one.

``written_atomically(path, suffix)`` yields a temporary path in the same directory; write the
new content there. When the block ends without an error the temporary file is fsynced and
renamed over ``path``; on an error it is removed and ``path`` is untouched. ``suffix`` keeps a
writer that insists on an extension (``numpy.savez`` adds ``.npz``) writing to the given name.

A write that fails because the disk is full or read-only raises ``StoreError`` saying so,
whatever the writer raised (faiss, for one, reports a failed write as ``RuntimeError``); other
errors pass through unchanged.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from assistant.store.db import disk_problem
from assistant.errors import StoreError


@contextmanager
def written_atomically(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    path = Path(path)
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError:
        _raise_if_disk(path)
        raise
    os.close(fd)
    try:
        yield Path(temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except (OSError, RuntimeError):
        _raise_if_disk(path)
        raise
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _raise_if_disk(path: Path) -> None:
    """``StoreError`` when a full or read-only disk is why writing ``path`` failed."""
    problem = disk_problem(path.parent)
    if problem:
        raise StoreError(f"could not write {path}: {problem}") from None
