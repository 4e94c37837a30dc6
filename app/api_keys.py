"""API keys for ``confidant serve --auth``: one or more bearer keys per login, kept only as hashes.

Contract:
- ``issue(users, login)`` makes a new key for ``login``, stores its SHA-256 in the users file and
  returns the key; it is shown once and can never be read back. ``revoke(users, login)`` drops
  every key of the login and returns how many there were.
- ``KeyCheck(users).login(key, client)`` is the login a bearer key belongs to, or ``None``. Keys
  are 256-bit random, so a plain SHA-256 is as safe to store as a slow password hash, and lets a
  key be found without knowing the login. Wrong keys are refused like wrong passwords: after
  ``max_failures`` in a row from one client address, that address is locked out for
  ``lock_seconds``, even with a right key (``Locked`` says for how long). The users file is
  re-read when it changed, so a key revoked while serving stops working at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from app.auth import Users
from assistant.errors import ConfidantError, NotFoundError

PREFIX = "cfk-"
SCHEME = "sha256$"


class Locked(ConfidantError):
    """Too many wrong keys from this address: refused for ``retry_after`` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"Too many wrong API keys; try again in {retry_after:.0f} s.")
        self.retry_after = retry_after


def hash_key(key: str) -> str:
    return SCHEME + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def issue(users: Users, login: str) -> str:
    if users.get(login) is None:
        raise NotFoundError(f"No login {login!r} in {users.path}; add it with `confidant users add {login}`.")
    key = PREFIX + secrets.token_urlsafe(32)
    users.users[login].keys.append(hash_key(key))
    users.save()
    return key


def revoke(users: Users, login: str) -> int:
    user = users.get(login)
    if user is None:
        raise NotFoundError(f"No login {login!r} in {users.path}.")
    count, user.keys = len(user.keys), []
    users.save()
    return count


class KeyCheck:
    def __init__(self, users: Users, max_failures: int = 5, lock_seconds: float = 300.0):
        self.users = users
        self.max_failures, self.lock_seconds = max_failures, lock_seconds
        self._failures: dict[str, tuple[int, float]] = {}  # client address -> (failures in a row, locked until)
        self._lock = threading.Lock()

    def login(self, key: str | None, client: str) -> str | None:
        """The login owning ``key``, or None (a wrong key counts as a failure); raises ``Locked``."""
        with self._lock:
            failures, until = self._failures.get(client, (0, 0.0))
            if time.monotonic() < until:
                raise Locked(until - time.monotonic())
        if not key:  # no key is a client not set up yet, not a guess: refused, not counted
            return None
        self.users.refresh()
        found = self._owner(hash_key(key))
        with self._lock:
            if found is not None:
                self._failures.pop(client, None)
                return found
            failures += 1
            until = time.monotonic() + self.lock_seconds if failures >= self.max_failures else 0.0
            self._failures[client] = (0 if until else failures, until)
        return None

    def _owner(self, hashed: str) -> str | None:
        owner = None
        for login, user in self.users.users.items():
            for stored in user.keys:  # compare every key, so timing says nothing about which matched
                if hmac.compare_digest(stored, hashed):
                    owner = login
        return owner
