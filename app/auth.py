"""Optional login: a users file of hashed passwords and the profiles each login may use, a lockout
after repeated failures, and the per-request check every web handler makes.

Users file (JSON, written atomically, readable by its owner only)::

    {"format": "confidant.users", "version": 1,
     "users": {"dad": {"password": "scrypt$16384$8$1$<salt hex>$<hash hex>", "profiles": ["Dad", "Sam"], "admin": false,
                       "keys": ["sha256$<hex>"]}}}

Contract:
- ``add_user(path, login, password, profiles, admin)`` creates or replaces a login; the password
  is kept only as a salted scrypt hash.
- ``Users.load(path)`` reads the file (``ConfigError`` naming the problem when it is bad);
  ``refresh()`` re-reads it when it changed on disk (keys issued or revoked while serving).
- ``keys`` are the hashes of a login's API keys (``app.api_keys``).
- ``Gate.check(login, password)`` is what Gradio's login calls: after ``max_failures`` wrong
  passwords in a row a login is locked for ``lock_seconds``, refusing even the right password.
- ``Access`` answers, for one request, which profiles its login may see and use. Without a users
  file everyone may use everything (one household on one computer). With one, a login sees only
  its own profiles (admins all); a profile it creates or imports becomes its own, renames follow.
  Anything else is a ``NotFoundError``, worded as if the profile did not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.files import written_atomically
from assistant.store.store import Profile, Store

FORMAT = "confidant.users"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # OWASP's minimum for scrypt; about 50 ms per check here
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual.hex(), digest)


@dataclass
class User:
    password: str
    profiles: list[str] = field(default_factory=list)
    admin: bool = False
    keys: list[str] = field(default_factory=list)


class Users:
    def __init__(self, path: Path, users: dict[str, User]):
        self.path = Path(path)
        self.users = users
        self._lock = threading.Lock()
        self._stamp = _stamp(self.path)

    @classmethod
    def load(cls, path: Path | str) -> "Users":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            users = {login: User(u["password"], list(u.get("profiles", [])), bool(u.get("admin", False)),
                                 [str(k) for k in u.get("keys", [])])
                     for login, u in data["users"].items()}
        except FileNotFoundError:
            raise ConfigError(f"no users file at {path}; create one with `confidant users add NAME --users-file {path}`") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ConfigError(f"the users file {path} is not valid ({type(error).__name__}: {error})") from None
        if data.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a Confidant users file")
        if not users:
            raise ConfigError(f"the users file {path} has no users; add one with `confidant users add NAME`")
        return cls(path, users)

    def save(self) -> None:
        data = {"format": FORMAT, "version": 1, "users": {k: vars(u) for k, u in sorted(self.users.items())}}
        with written_atomically(self.path) as temp:
            temp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self._stamp = _stamp(self.path)

    def refresh(self) -> None:
        """Re-read the file if it changed since it was read or written here (a key was issued or
        revoked by ``confidant users key`` while serving); a file gone bad keeps the last good logins."""
        with self._lock:
            self._reload_if_changed()

    def _reload_if_changed(self) -> None:  # the caller holds the lock
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            self.users = Users.load(self.path).users
        except ConfigError:
            return
        self._stamp = stamp

    def get(self, login: str | None) -> User | None:
        return self.users.get(login or "")

    def grant(self, login: str, profile: str) -> None:
        with self._lock:
            self._reload_if_changed()  # never write back a key revoked meanwhile
            user = self.users[login]
            if not user.admin and profile.casefold() not in {p.casefold() for p in user.profiles}:
                user.profiles.append(profile)
                self.save()

    def renamed(self, old: str, new: str) -> None:
        with self._lock:
            self._reload_if_changed()  # never write back a key revoked meanwhile
            for user in self.users.values():
                user.profiles = [new if p.casefold() == old.casefold() else p for p in user.profiles]
            self.save()

    def removed(self, name: str) -> None:
        with self._lock:
            self._reload_if_changed()  # never write back a key revoked meanwhile
            for user in self.users.values():
                user.profiles = [p for p in user.profiles if p.casefold() != name.casefold()]
            self.save()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size  # an atomic write is a new inode


def add_user(path: Path | str, login: str, password: str, profiles: list[str], admin: bool = False) -> User:
    login = login.strip()
    if not login or len(login) > 60 or any(c.isspace() or not c.isprintable() for c in login):
        raise InputError("A login is one word of up to 60 printable characters.")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"A password needs at least {MIN_PASSWORD} characters.")
    path = Path(path)
    users = Users.load(path) if path.exists() else Users(path, {})
    keys = users.users[login].keys if login in users.users else []  # a new password keeps the login's API keys
    users.users[login] = User(hash_password(password), [p.strip() for p in profiles if p.strip()], admin, keys)
    users.save()
    return users.users[login]


class Gate:
    """The login check, with a lockout after repeated failures (per login, in memory)."""

    def __init__(self, users: Users, max_failures: int = 5, lock_seconds: float = 300.0):
        self.users = users
        self.max_failures, self.lock_seconds = max_failures, lock_seconds
        self._failures: dict[str, tuple[int, float]] = {}  # login -> (failures in a row, locked until)
        self._absent = hash_password(secrets.token_hex(16))  # what an unknown login is checked against
        self._lock = threading.Lock()

    def check(self, login: str, password: str) -> bool:
        with self._lock:
            failures, locked_until = self._failures.get(login, (0, 0.0))
            if time.monotonic() < locked_until:
                return False
        user = self.users.get(login)
        # An unknown login costs the same scrypt as a known one, so timing does not reveal which exist.
        ok = verify_password(password, user.password if user else self._absent)
        with self._lock:
            if ok and user is not None:
                self._failures.pop(login, None)
                return True
            failures += 1
            until = time.monotonic() + self.lock_seconds if failures >= self.max_failures else 0.0
            self._failures[login] = (0 if until else failures, until)
            return False

    def locked(self, login: str) -> bool:
        with self._lock:
            return time.monotonic() < self._failures.get(login, (0, 0.0))[1]


class Access:
    """Which profiles a request's login may see and use (see the module contract)."""

    def __init__(self, store: Store, users: Users | None = None):
        self.store = store
        self.users = users

    def login(self, request) -> str | None:
        return getattr(request, "username", None) if self.users else None

    def _user(self, request) -> User | None:
        if self.users is None:
            return None
        user = self.users.get(self.login(request))
        if user is None:  # Gradio let nobody in without a login; be safe if it ever does
            raise NotFoundError("Please log in again.")
        return user

    def people(self, request) -> list[Profile]:
        user = self._user(request)
        everyone = self.store.profiles()
        if user is None or user.admin:
            return everyone
        mine = {p.casefold() for p in user.profiles}
        return [p for p in everyone if p.name.casefold() in mine]

    def person(self, request, person) -> Profile:
        """The profile ``person`` (an id from the page) if this login may use it."""
        try:
            wanted = int(person)
        except (TypeError, ValueError):
            raise NotFoundError("Choose a person first.") from None
        for profile in self.people(request):
            if profile.id == wanted:
                return profile
        raise NotFoundError(f"No profile {person}.")

    def is_admin(self, request) -> bool:
        user = self._user(request)
        return user is None or user.admin

    def may_claim(self, request, name: str) -> None:
        """Refuse a name that is someone else's profile (an import or a new person would join it)."""
        existing = self.store.find_profile(name)
        if existing is not None and existing.id not in {p.id for p in self.people(request)}:
            raise InputError(f"The name {name!r} is taken; choose another.")

    def created(self, request, profile: Profile) -> None:
        if self.users is not None and not self.is_admin(request):
            self.users.grant(self.login(request), profile.name)

    def renamed(self, old: str, new: str) -> None:
        if self.users is not None:
            self.users.renamed(old, new)

    def removed(self, name: str) -> None:
        if self.users is not None:
            self.users.removed(name)
