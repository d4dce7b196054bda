"""Command line: ``python -m dashboard users add | list | remove | set-password | set-role``.

Passwords are read from the terminal (asked twice) or, when stdin is not a terminal, from its
first line; never from the command line, where ``ps`` and the shell history would keep them.
Exit 0 on success, 1 when the change is refused (the user exists, or does not), 2 on bad
usage or an unusable configuration or store; errors are one line on stderr, no traceback.

Other command groups register themselves in :data:`COMMANDS` (one function that adds its
subparsers, each with ``set_defaults(func=...)`` returning the exit code).
"""
from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from dashboard.auth import embed
from dashboard.auth.identity import ROLE_NAMES, SCOPE_COLUMNS, Role, Scope, parse_scope
from dashboard.reports import cli as report_cli
from dashboard.reports import schedule

PROG = "python -m dashboard"


class UsageError(Exception):
    """Bad usage: exit 2 with the message."""


class Refused(Exception):
    """The operation was refused: exit 1 with the message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the usage as well)
        if message.startswith("unrecognized arguments"):
            # the unknown words may be a password typed on the command line: never echo them
            message = "unrecognized arguments (a password is read from stdin, never from the command line)"
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


# --- users ---------------------------------------------------------------------------------


def _state():
    """The user store and audit log that ``STATE_DIR`` (or the default) names. Only the
    folder is read: an administrator's shell need not hold the server's SECRET_KEY."""
    from dashboard.auth.audit import AuditLog
    from dashboard.auth.settings import AUDIT_FILE, USERS_FILE, state_dir
    from dashboard.auth.users import UserStore

    folder = state_dir()
    return UserStore(folder / USERS_FILE), AuditLog(folder / AUDIT_FILE)


def _actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without a passwd entry)
        return "cli:unknown"


def _role(text: str) -> Role:
    try:
        return Role.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _scope(items: list[str] | None) -> Scope:
    try:
        return parse_scope(items or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def read_password(prompt: str = "Password: ") -> str:
    """From the terminal (twice, compared) or the first line of stdin."""
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if first != getpass.getpass("Repeat it: "):
            raise UsageError("the two passwords differ")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise UsageError("no password on stdin (pipe it in, or run in a terminal to be asked)")
    return line.rstrip("\r\n")


def _users_add(args: argparse.Namespace) -> int:
    from dashboard.auth.users import check_name

    role, scope = _role(args.role), _scope(args.scope)
    check_name(args.name)
    store, audit = _state()
    if store.get(args.name) is not None:   # before asking for a password that would be thrown away
        raise Refused(f"user {args.name!r} already exists")
    user = store.add(args.name, role, scope, read_password())
    audit.record("user-added", _actor(), target=user.name, role=user.role.label, scope=user.scope.text())
    print(f"added {user.name} ({user.role.label}{', ' + user.scope.key() if user.scope.columns else ''})")
    return 0


def _users_list(_args: argparse.Namespace) -> int:
    store, _ = _state()
    users = store.list()
    if not users:
        print(f"no users yet: {PROG} users add NAME --role admin", file=sys.stderr)
        return 0
    rows = [("NAME", "ROLE", "SCOPE", "UPDATED")]
    rows += [(u.name, u.role.label, u.scope.key() or "-", u.updated) for u in users]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def _users_remove(args: argparse.Namespace) -> int:
    store, audit = _state()
    user = store.remove(args.name)
    audit.record("user-removed", _actor(), target=user.name, role=user.role.label, scope=user.scope.text())
    print(f"removed {user.name}")
    return 0


def _users_set_password(args: argparse.Namespace) -> int:
    store, audit = _state()
    if store.get(args.name) is None:   # before asking for a password that would be thrown away
        raise Refused(f"no user {args.name!r}")
    user = store.set_password(args.name, read_password("New password: "))
    audit.record("password-set", _actor(), target=user.name)
    print(f"password set for {user.name}")
    return 0


def _users_set_role(args: argparse.Namespace) -> int:
    role = _role(args.role)
    scope = Scope() if args.unscoped else (_scope(args.scope) if args.scope else None)
    store, audit = _state()
    before = store.get(args.name)
    if before is None:
        raise Refused(f"no user {args.name!r}")
    # no --scope keeps the scope: a role change must not silently widen what someone sees
    user = store.update(args.name, role, before.scope if scope is None else scope)
    audit.record("user-changed", _actor(), target=user.name, role=[before.role.label, user.role.label],
                 scope=[before.scope.text(), user.scope.text()])
    print(f"{user.name}: {user.role.label}, scope {user.scope.key() or 'all rows'}")
    return 0


def register_users(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="manage the users of AUTH=local (kept in STATE_DIR/users.json)")
    commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    scope_help = (f"limit the rows the user sees, COLUMN=VALUE[,VALUE...]; repeatable; columns: "
                  f"{', '.join(SCOPE_COLUMNS)}")

    add = commands.add_parser("add", help="add a user (password from the terminal or stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, help=f"one of {', '.join(ROLE_NAMES)}")
    add.add_argument("--scope", action="append", metavar="COLUMN=VALUE", help=scope_help)
    add.set_defaults(func=_users_add)

    commands.add_parser("list", help="list the users").set_defaults(func=_users_list)

    remove = commands.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(func=_users_remove)

    password = commands.add_parser("set-password", help="set a user's password (from the terminal or stdin)")
    password.add_argument("name")
    password.set_defaults(func=_users_set_password)

    role = commands.add_parser("set-role", help="change a user's role and, with --scope/--unscoped, scope")
    role.add_argument("name")
    role.add_argument("--role", required=True, help=f"one of {', '.join(ROLE_NAMES)}")
    limits = role.add_mutually_exclusive_group()
    limits.add_argument("--scope", action="append", metavar="COLUMN=VALUE",
                        help=scope_help + " (replaces the scope; without it the scope is kept)")
    limits.add_argument("--unscoped", action="store_true", help="remove the scope: the user sees all rows")
    role.set_defaults(func=_users_set_role)


# Each adds its command(s) to the top-level subparsers.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_users, embed.add_cli, schedule.add_cli,
                                                                report_cli.register]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dashboard.auth.users import NoSuchUser, UserError, UserExists, UserStoreError

    try:
        return args.func(args)
    except (Refused, UserExists, NoSuchUser) as exc:
        message, code = str(exc), 1
    except (UsageError, UserError, UserStoreError) as exc:
        message, code = str(exc), 2
    except OSError as exc:   # the state folder or the audit log cannot be written
        message, code = f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 2
    except KeyboardInterrupt:
        message, code = "interrupted", 130
    print(f"{PROG}: {message}", file=sys.stderr)
    return code
