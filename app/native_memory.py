"""Keep a long-running server's native heap from creeping (glibc only; elsewhere a no-op).

Contract:
- ``limit_arenas(n)``: at most ``n`` malloc arenas. glibc gives each thread that allocates its
  own arena (up to 8 per core), and Gradio answers from a pool of worker threads, so torch's and
  llama.cpp's buffers end up spread over many arenas whose free space no other thread reuses.
  Call it before those threads start.
- ``trim()``: hand freed heap pages back to the system (``malloc_trim``), after a turn.
The server's resident memory over 1,000 turns, with and without these: docs/performance.md §5.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def limit_arenas(n: int = 2) -> bool:
    return bool(_LIBC and _LIBC.mallopt(M_ARENA_MAX, n))


def trim() -> bool:
    return bool(_LIBC and _LIBC.malloc_trim(0))
