"""Writing a file so that a crash leaves the old version or the new one, never a torn one.

``written_atomically(path, suffix)`` yields a temporary path in the same directory; write the
new content there. When the block ends without an error the temporary file is fsynced and
renamed over ``path``; on an error it is removed and ``path`` is untouched. ``suffix`` keeps a
writer that insists on an extension (``numpy.savez`` adds ``.npz``) writing to the given name.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def written_atomically(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
