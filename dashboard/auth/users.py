"""The product's own users (``AUTH=local``): one JSON file in ``STATE_DIR``.

``{"version": 1, "users": {name: {"role", "scope": ["col=val", ...], "password", "created",
"updated"}}}``. Every change takes an exclusive ``flock`` on the sibling ``users.json.lock``,
re-reads the file, and replaces it atomically (temp file in the same folder, fsync,
``os.replace``), so gunicorn workers and CLI runs on one host never lose each other's writes
and a reader never sees half a file. ``get`` — called on every request — costs one ``stat``
while the file is unchanged.

Passwords are hashed with scrypt (stdlib), stored as ``scrypt$n$r$p$<salt>$<key>`` (base64) so
the parameters can be raised later without invalidating old hashes.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dashboard.auth.identity import Identity, Role, Scope, parse_scope
from dashboard.language import _
from etl.durability import fsync_path

VERSION = 1
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD, MAX_PASSWORD = 10, 1024
# scrypt cost: N=2**15, r=8 needs 32 MiB and ~50-100 ms per hash, slow enough to make a stolen
# file expensive to attack, quick enough for a sign-in.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
# Bounds for hashes read from the file: a tampered hash must not make a sign-in allocate
# gigabytes or spin for minutes.
_N_RANGE, _R_RANGE, _P_RANGE = (2 ** 10, 2 ** 20), (1, 32), (1, 16)
_HASH = re.compile(r"scrypt\$([0-9]{1,8})\$([0-9]{1,3})\$([0-9]{1,3})\$([A-Za-z0-9+/=]{4,64})\$([A-Za-z0-9+/=]{4,128})")
# Checked for an unknown name, so that a failed sign-in costs one hash whether or not the
# name exists (its key matches no password: nothing is derived from it).
_DUMMY_HASH = (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
               f"{base64.b64encode(b'shopper-dummy-16').decode()}${base64.b64encode(bytes(KEY_BYTES)).decode()}")


class UserError(ValueError):
    """A refused change or an invalid name, password or scope; the message says which."""


class UserExists(UserError):
    pass


class NoSuchUser(UserError):
    pass


class UserStoreError(RuntimeError):
    """The store file cannot be read or written; the message names the file and the problem."""


@dataclass(frozen=True)
class User:
    """A user as the rest of the app sees it: the password hash never leaves this module."""

    name: str
    role: Role
    scope: Scope
    created: str
    updated: str

    def identity(self, source: str = "local") -> Identity:
        return Identity(name=self.name, role=self.role, scope=self.scope, source=source)


def check_name(name: Any) -> str:
    """``name`` when it is a valid user name, else :class:`UserError`."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(_("a user name is 1 to 64 characters: ASCII letters, digits, '.', '_', '@' or '-'"))
    return name


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(_("a password is {low} to {high} characters").format(low=MIN_PASSWORD, high=MAX_PASSWORD))
    return password


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$<salt>$<key>`` for a valid password."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(check_password(password).encode("utf-8", "surrogatepass"), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(key).decode()])


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL refuses unless maxmem covers its own estimate: 128*r*(n+2) + 128*r*p bytes
    maxmem = 128 * r * (n + 2) + 128 * r * p + 1024 * 1024
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


def _parse_hash(stored: Any) -> tuple[int, int, int, bytes, bytes] | None:
    """The parameters, salt and key of a stored hash, or None when it is not a usable one."""
    match = _HASH.fullmatch(stored) if isinstance(stored, str) else None
    if match is None:
        return None
    n, r, p = (int(v) for v in match.groups()[:3])
    if not (_N_RANGE[0] <= n <= _N_RANGE[1] and n & (n - 1) == 0 and _R_RANGE[0] <= r <= _R_RANGE[1]
            and _P_RANGE[0] <= p <= _P_RANGE[1]):
        return None
    try:
        salt, key = (base64.b64decode(v, validate=True) for v in match.groups()[3:])
    except ValueError:
        return None
    return (n, r, p, salt, key) if len(salt) >= 8 and len(key) >= 16 else None


def _matches(password: str, stored: str) -> bool:
    parsed = _parse_hash(stored)
    if parsed is None:   # checked when the file is read; here only to be safe
        return False
    n, r, p, salt, key = parsed
    return hmac.compare_digest(_scrypt(password.encode("utf-8", "surrogatepass"), salt, n, r, p, len(key)), key)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Record:
    user: User
    password: str  # the stored hash

    @property
    def stamp(self) -> str:
        """See :meth:`UserStore.credential_stamp`."""
        return hashlib.sha256(f"{self.password}|{self.user.created}".encode()).hexdigest()[:16]


class UserStore:
    """Users in ``path`` (created with mode 0600 on the first change)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        # (inode, mtime, size) of the file last read, and its users; replaced whole, never
        # mutated, so threads of a worker may share it without a lock
        self._cache: tuple[tuple[int, int, int], dict[str, _Record]] | None = None

    # --- reading ---------------------------------------------------------------------------

    def _records(self, fresh: bool = False) -> dict[str, _Record]:
        """Every user, from the cache while the file's (inode, mtime, size) is unchanged."""
        cached = self._cache
        if not fresh and cached is not None:
            try:
                info = os.stat(self.path)
            except OSError:
                info = None   # gone or unreadable: the open below says which
            if info is not None and cached[0] == (info.st_ino, info.st_mtime_ns, info.st_size):
                return cached[1]
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return {}   # no user added yet
        except OSError as exc:
            raise UserStoreError(f"{self.path}: cannot be read ({exc.strerror})") from None
        with handle:
            # keyed by what is actually open: a replace between a stat and the read cannot
            # file new contents under an old key
            info = os.fstat(handle.fileno())
            try:
                data = handle.read()
            except OSError as exc:
                raise UserStoreError(f"{self.path}: cannot be read ({exc.strerror})") from None
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        records = _parse(data, self.path)
        self._cache = (key, records)
        return records

    def get(self, name: str) -> User | None:
        record = self._records().get(name) if isinstance(name, str) else None
        return record.user if record else None

    def credential_stamp(self, name: str) -> str | None:
        """A short fingerprint of the user's password hash and creation time: a session keeps
        the one it was signed in with, so a password change, or the removal and re-creation of
        the name, ends every session made before (dashboard/auth/gate.py compares them)."""
        record = self._records().get(name) if isinstance(name, str) else None
        return record.stamp if record else None

    def session_user(self, name: str, stamp: object) -> User | None:
        """The user a session signed in with ``stamp`` acts for now (role and scope as stored
        today), or None when the user is gone or the credentials changed: one read per request."""
        record = self._records().get(name) if isinstance(name, str) else None
        return record.user if record and isinstance(stamp, str) and hmac.compare_digest(record.stamp, stamp) else None

    def list(self) -> list[User]:
        return [record.user for _, record in sorted(self._records().items())]

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (one hash either way)."""
        record = self._records().get(name) if isinstance(name, str) else None
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            password = ""   # still hash once: the answer's timing must not depend on the input
        stored = record.password if record else _DUMMY_HASH
        ok = _matches(password, stored)
        return record.user if record and ok and password else None

    # --- changing --------------------------------------------------------------------------

    def add(self, name: str, role: Role, scope: Scope, password: str) -> User:
        check_name(name)
        role, scope = _role(role), _scope(scope)
        hashed = hash_password(password)   # outside the lock: the slow part blocks no one

        def change(records: dict[str, _Record]) -> User:
            if name in records:
                raise UserExists(_("user {name} already exists").format(name=repr(name)))
            similar = next((other for other in records if other.lower() == name.lower()), None)
            if similar:   # two accounts told apart only by case are a trap for admins
                raise UserExists(_("user {name} already exists (names differing only in case are refused)")
                                 .format(name=repr(similar)))
            now = _now()
            records[name] = _Record(User(name, role, scope, now, now), hashed)
            return records[name].user

        return self._change(change)

    def remove(self, name: str) -> User:
        def change(records: dict[str, _Record]) -> User:
            return records.pop(self._known(records, name)).user

        return self._change(change)

    def set_password(self, name: str, password: str) -> User:
        hashed = hash_password(password)

        def change(records: dict[str, _Record]) -> User:
            old = records[self._known(records, name)]
            user = User(name, old.user.role, old.user.scope, old.user.created, _now())
            records[name] = _Record(user, hashed)
            return user

        return self._change(change)

    def update(self, name: str, role: Role, scope: Scope) -> User:
        role, scope = _role(role), _scope(scope)

        def change(records: dict[str, _Record]) -> User:
            old = records[self._known(records, name)]
            user = User(name, role, scope, old.user.created, _now())
            records[name] = _Record(user, old.password)
            return user

        return self._change(change)

    @staticmethod
    def _known(records: dict[str, _Record], name: str) -> str:
        if not isinstance(name, str) or name not in records:
            raise NoSuchUser(_("no user {name}").format(name=repr(name)) if isinstance(name, str) and len(name) <= 64
                             else _("no such user"))
        return name

    @contextlib.contextmanager
    def _locked(self):
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UserStoreError(f"{self.lock_path}: cannot be opened ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # closing releases the lock

    def _change(self, change):
        with self._locked():
            # re-read under the lock, past the cache: the (inode, mtime, size) key can repeat
            # when several writes land within one clock tick
            records = dict(self._records(fresh=True))
            result = change(records)
            self._write(records)
            self._records(fresh=True)
        return result

    def _write(self, records: dict[str, _Record]) -> None:
        body = {"version": VERSION, "users": {
            name: {"role": r.user.role.label, "scope": r.user.scope.text(), "password": r.password,
                   "created": r.user.created, "updated": r.user.updated}
            for name, r in sorted(records.items())}}
        data = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        tmp = None
        try:
            # mkstemp creates the file with mode 0600, in the same folder so os.replace is atomic
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            tmp = None
            fsync_path(self.path.parent)   # the rename itself survives a power cut
        except OSError as exc:
            raise UserStoreError(f"{self.path}: cannot be written ({exc.strerror or exc})") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _role(role: Any) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role.parse(role)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _scope(scope: Any) -> Scope:
    if not isinstance(scope, Scope):
        raise UserError("a scope is a Scope (see dashboard.auth.identity.parse_scope)")
    return scope


def _parse(data: bytes, path: Path) -> dict[str, _Record]:
    """The users of a store file; :class:`UserStoreError` naming the file and the problem.

    A damaged file is never read as "no users": the next change would overwrite everyone.
    """
    def bad(problem: str) -> UserStoreError:
        return UserStoreError(f"{path}: {problem}; fix or restore the file (it is never read as empty)")

    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("version") != VERSION or not isinstance(body.get("users"), dict):
        raise bad(f'not a user store (expected {{"version": {VERSION}, "users": {{...}}}})')
    records = {}
    for name, entry in body["users"].items():
        shown = name if isinstance(name, str) and len(name) <= 64 and name.isprintable() else "(unreadable name)"
        if not NAME.fullmatch(name):
            raise bad(f"user {shown!r}: invalid name")
        if not isinstance(entry, dict):
            raise bad(f"user {shown!r}: not an object")
        if not isinstance(entry.get("scope"), list):
            raise bad(f"user {shown!r}: scope is not a list")
        try:
            role, scope = Role.parse(entry.get("role")), parse_scope(entry["scope"])
        except ValueError as exc:
            raise bad(f"user {shown!r}: {exc}") from None
        if _parse_hash(entry.get("password")) is None:
            raise bad(f"user {shown!r}: the password hash is missing or not scrypt$n$r$p$salt$key")
        created, updated = entry.get("created"), entry.get("updated")
        if not isinstance(created, str) or not isinstance(updated, str):
            raise bad(f"user {shown!r}: created/updated missing")
        records[name] = _Record(User(name, role, scope, created, updated), entry["password"])
    return records
