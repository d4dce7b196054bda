"""The user store of AUTH=local: hashing, validation, atomic and concurrent writes, a damaged file."""
from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.auth import users as users_module
from dashboard.auth.identity import Role, Scope, parse_scope
from dashboard.auth.users import (MAX_PASSWORD, MIN_PASSWORD, NoSuchUser, UserError, UserExists, UserStore,
                                  UserStoreError, check_name, check_password)

PASSWORD = "correct horse battery"
PREMIUM = parse_scope(["service_tier=premium"])
NAME_CHARS = string.ascii_letters + string.digits + "._@-"


@pytest.fixture
def store(tmp_path) -> UserStore:
    return UserStore(tmp_path / "state" / "users.json")


def test_add_get_list_and_the_identity(store):
    added = store.add("alice", Role.ANALYST, PREMIUM, PASSWORD)
    store.add("bob", Role.VIEWER, Scope(), PASSWORD)
    assert store.get("alice") == added and store.get("nobody") is None
    assert [u.name for u in store.list()] == ["alice", "bob"]
    assert added.role is Role.ANALYST and added.scope == PREMIUM and added.created == added.updated
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", added.created)
    identity = added.identity()
    assert (identity.name, identity.role, identity.scope, identity.source) == ("alice", Role.ANALYST, PREMIUM, "local")
    assert not any("password" in field or "hash" in field for field in vars(added))   # never exposed


def test_the_file_is_private_and_holds_the_documented_format(store):
    store.add("alice", Role.ADMIN, PREMIUM, PASSWORD)
    store.add("bob", Role.VIEWER, Scope(), PASSWORD)     # same password: another salt, another key
    assert os.stat(store.path).st_mode & 0o777 == 0o600 and store.lock_path.exists()
    body = json.loads(store.path.read_text())
    assert body["version"] == 1 and set(body["users"]) == {"alice", "bob"}
    alice = body["users"]["alice"]
    assert alice["role"] == "admin" and alice["scope"] == ["service_tier=premium"]
    hashes = []
    for entry in body["users"].values():
        kind, n, r, p, salt, key = entry["password"].split("$")
        assert (kind, n, r, p) == ("scrypt", str(2 ** 15), "8", "1")
        assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
        assert PASSWORD not in entry["password"]
        hashes.append((salt, key))
        # the key is scrypt of the password with exactly these parameters
        assert base64.b64decode(key) == hashlib.scrypt(PASSWORD.encode(), salt=base64.b64decode(salt),
                                                       n=2 ** 15, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
    assert hashes[0][0] != hashes[1][0] and hashes[0][1] != hashes[1][1]
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_verify_right_wrong_and_unknown_each_cost_one_hash(store, monkeypatch):
    store.add("alice", Role.VIEWER, Scope(), PASSWORD)
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(k["n"]) or real(*a, **k))
    assert store.verify("alice", PASSWORD).name == "alice"
    assert store.verify("alice", PASSWORD + "x") is None
    assert store.verify("alice", PASSWORD.upper()) is None
    assert store.verify("mallory", PASSWORD) is None               # unknown: still one hash
    assert store.verify("bad name\n", PASSWORD) is None            # invalid name: the same
    assert store.verify("alice", "x" * (MAX_PASSWORD + 1)) is None  # too long: hashed as "" instead
    assert store.verify("alice", None) is None                     # not text at all
    assert calls == [2 ** 15] * 7


def test_set_password_update_and_remove(store):
    store.add("alice", Role.VIEWER, Scope(), PASSWORD)
    changed = store.set_password("alice", "another password")
    assert store.verify("alice", PASSWORD) is None and store.verify("alice", "another password") == changed
    updated = store.update("alice", Role.ADMIN, PREMIUM)
    assert (updated.role, updated.scope, updated.created) == (Role.ADMIN, PREMIUM, changed.created)
    assert store.get("alice") == updated and store.verify("alice", "another password") == updated  # hash kept
    assert store.remove("alice") == updated and store.get("alice") is None and store.list() == []
    for change in (lambda: store.remove("alice"), lambda: store.set_password("alice", PASSWORD),
                   lambda: store.update("alice", Role.VIEWER, Scope())):
        with pytest.raises(NoSuchUser, match="no user 'alice'"):
            change()


def test_refusals_name_the_problem(store):
    store.add("alice", Role.VIEWER, Scope(), PASSWORD)
    with pytest.raises(UserExists, match="already exists"):
        store.add("alice", Role.ADMIN, Scope(), PASSWORD)
    with pytest.raises(UserExists, match="differing only in case"):
        store.add("Alice", Role.ADMIN, Scope(), PASSWORD)
    with pytest.raises(UserError, match="1 to 64 characters"):
        store.add("al ice", Role.VIEWER, Scope(), PASSWORD)
    with pytest.raises(UserError, match="10 to 1024"):
        store.add("bob", Role.VIEWER, Scope(), "short")
    with pytest.raises(UserError, match="a role is one of"):
        store.add("bob", "boss", Scope(), PASSWORD)
    with pytest.raises(UserError, match="a scope is"):
        store.update("alice", Role.VIEWER, ["service_tier=premium"])
    assert [u.name for u in store.list()] == ["alice"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet=NAME_CHARS, max_size=80),
                 st.integers(), st.none(), st.lists(st.text(max_size=3))))
def test_names_are_accepted_exactly_when_valid(name):
    valid = isinstance(name, str) and 1 <= len(name) <= 64 and all(c in NAME_CHARS for c in name)
    if valid:
        assert check_name(name) == name
    else:
        with pytest.raises(UserError):
            check_name(name)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(min_size=1000, max_size=1100), st.binary(max_size=20),
                 st.integers(), st.none()))
def test_passwords_are_accepted_exactly_when_10_to_1024_characters(password):
    if isinstance(password, str) and MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        assert check_password(password) == password
    else:
        with pytest.raises(UserError, match="10 to 1024"):
            check_password(password)


@settings(max_examples=8, deadline=None)
@given(name=st.text(max_size=70), password=st.text(max_size=30))
def test_any_unicode_password_and_name_verifies_without_raising(tmp_path_factory, name, password):
    store = UserStore(tmp_path_factory.mktemp("s") / "users.json")
    assert store.verify(name, password) is None
    if len(password) >= MIN_PASSWORD:
        store.add("u", Role.VIEWER, Scope(), password)           # lone surrogates included
        assert store.verify("u", password).name == "u"


def test_gets_cost_a_stat_until_the_file_changes(store, monkeypatch):
    store.add("alice", Role.VIEWER, Scope(), PASSWORD)
    parsed = []
    real = users_module._parse
    monkeypatch.setattr(users_module, "_parse", lambda *a: parsed.append(1) or real(*a))
    for _ in range(50):
        assert store.get("alice").role is Role.VIEWER
    assert parsed == []
    UserStore(store.path).update("alice", Role.ADMIN, Scope())   # another worker changes the file
    parsed.clear()
    for _ in range(50):
        assert store.get("alice").role is Role.ADMIN
    assert parsed == [1]                     # read once after the change, then cached again


@pytest.mark.parametrize("content, problem", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[]", "not a user store"),
    (b'{"version": 2, "users": {}}', "not a user store"),
    (b'{"version": 1, "users": {"bad name": {}}}', "invalid name"),
    (b'{"version": 1, "users": {"a": {"role": "boss", "scope": []}}}', "a role is one of"),
    (b'{"version": 1, "users": {"a": {"role": "viewer", "scope": "x"}}}', "scope is not a list"),
    (b'{"version": 1, "users": {"a": {"role": "viewer", "scope": ["nope=1"]}}}', "a scope column"),
    (b'{"version": 1, "users": {"a": {"role": "viewer", "scope": [], "password": "plain"}}}', "password hash"),
    (b'{"version": 1, "users": {"a": {"role": "viewer", "scope": [], "password": "scrypt$1073741824$8$1$'
     b'AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}', "password hash"),
])
def test_a_damaged_file_is_an_error_naming_it_never_an_empty_store(store, content, problem):
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(content)
    for call in (store.list, lambda: store.get("a"), lambda: store.verify("a", PASSWORD),
                 lambda: store.add("b", Role.VIEWER, Scope(), PASSWORD), lambda: store.remove("a")):
        with pytest.raises(UserStoreError) as info:
            call()
        assert str(store.path) in str(info.value) and problem in str(info.value)
    assert store.path.read_bytes() == content             # nothing was overwritten


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_an_error_naming_it(store):
    store.add("alice", Role.VIEWER, Scope(), PASSWORD)
    store.path.chmod(0)
    with pytest.raises(UserStoreError, match="cannot be read"):
        UserStore(store.path).list()


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(store, monkeypatch):
    store.add("alice", Role.VIEWER, Scope(), PASSWORD)
    before = store.path.read_bytes()
    order = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: order.append("fsync") or real_fsync(fd))

    def broken_replace(src, dst):
        order.append("replace")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UserStoreError, match="cannot be written.*No space left"):
        store.update("alice", Role.ADMIN, Scope())
    assert order == ["fsync", "replace"]                  # the data is on disk before the rename
    assert store.path.read_bytes() == before and store.get("alice").role is Role.VIEWER
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["users.json", "users.json.lock"]


# --- several processes at once ---------------------------------------------------------------


def _add_users(path, worker: int, count: int, barrier) -> None:
    store = UserStore(path)
    barrier.wait()
    for index in range(count):
        store.add(f"w{worker}-u{index}", Role.VIEWER, Scope(), f"password-{worker}-{index}")


def _churn(path, worker: int, count: int, barrier) -> None:
    users_module.SCRYPT_N = 2 ** 10   # this child only: cheap hashes, so many writes overlap
    store = UserStore(path)
    barrier.wait()
    for index in range(count):
        store.add(f"c{worker}-{index}", Role.VIEWER, Scope(), PASSWORD)
        if index % 2:
            store.remove(f"c{worker}-{index - 1}")
        store.update(f"base{worker}", Role.ANALYST if index % 2 else Role.ADMIN, Scope())
        store.list()   # a reader in between never sees half a file (it would raise)


def _run(target, path, workers: int, count: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers)
    processes = [context.Process(target=target, args=(path, w, count, barrier)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * workers


def test_processes_adding_at_once_lose_nothing(store):
    _run(_add_users, store.path, workers=4, count=4)
    fresh = UserStore(store.path)
    assert sorted(u.name for u in fresh.list()) == sorted(f"w{w}-u{i}" for w in range(4) for i in range(4))
    assert fresh.verify("w3-u2", "password-3-2").name == "w3-u2"
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_processes_changing_at_once_lose_nothing(store):
    for worker in range(4):
        store.add(f"base{worker}", Role.VIEWER, Scope(), PASSWORD)
    created = {u.name: u.created for u in store.list()}
    _run(_churn, store.path, workers=4, count=30)
    final = {u.name: u for u in UserStore(store.path).list()}
    expected = {f"c{w}-{i}" for w in range(4) for i in range(1, 30, 2)} | set(created)
    assert set(final) == expected
    # each worker's last role change (analyst) survived every other worker's writes
    assert {n: (final[n].role, final[n].created) for n in created} == {n: (Role.ANALYST, c) for n, c in created.items()}
    assert UserStore(store.path).verify("base2", PASSWORD) is not None   # no hash lost either
