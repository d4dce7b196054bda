"""``python -m dashboard report``: build one report now, archive it, optionally mail it.

Progress lines go to stderr, the archived report's id and files to stdout. Exit 0 only when the
report is archived (and copied to ``--out``, and every ``--to`` recipient was sent it); 1 when
the report is archived but a mail could not be sent (the delivery record says why, and the
scheduler retries it); 2 for bad usage or a report that could not be built.
"""
from __future__ import annotations

import argparse
import sys

from dashboard.auth.identity import ROLE_NAMES, SCOPE_COLUMNS, SYSTEM, Identity, Role, parse_scope
from dashboard.i18n import LANGS

FORMAT_HELP = "comma-separated: html, pdf (default both; HTML alone where no Chromium is installed)"


def _progress(line: str) -> None:
    print(f"report: {line}", file=sys.stderr, flush=True)


def _fail(message: str, code: int = 2) -> int:
    print(f"python -m dashboard report: {message}", file=sys.stderr)
    return code


def _identity(args: argparse.Namespace) -> Identity:
    """Who the report is for: the operator (everything) unless --role/--scope say otherwise."""
    if args.role is None and not args.scope:
        return SYSTEM
    role = Role.parse(args.role or "admin")
    return Identity(name="report", role=role, scope=parse_scope(args.scope or []), source="system")


def report_command(args: argparse.Namespace) -> int:
    from dashboard.reports.build import ReportError, build_report

    try:
        identity = _identity(args)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        manifest = build_report(identity=identity, lang=args.lang, formats=args.format.split(",") if args.format else None,
                                trigger="command", out=args.out, progress=_progress, recipients=args.to or ())
    except ReportError as exc:
        return _fail(exc.message)
    print(manifest.id)
    if not manifest.deliveries:
        return 0
    from dashboard.reports.archive import Archive
    from dashboard.reports.delivery import deliver

    _progress(f"sending to {', '.join(d.to for d in manifest.deliveries)}")
    sent = deliver(Archive(), manifest.id)
    failed = [d for d in sent.deliveries if d.status != "sent"]
    for d in sent.deliveries:
        _progress(f"{d.to}: {d.status}" + (f" ({d.last_error})" if d.last_error else ""))
    if failed:
        return _fail(f"report {manifest.id} is archived, but {len(failed)} of {len(sent.deliveries)} mails were not "
                     "sent (retried by `python -m dashboard schedule`)", 1)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="build a report now (HTML and PDF), archive it in REPORTS_DIR, mail it")
    report.add_argument("--out", type=_path, help="also copy the report's files into this folder")
    report.add_argument("--format", default=None, type=_formats, help=FORMAT_HELP)
    report.add_argument("--to", action="append", metavar="ADDRESS", help="mail it to this address (repeatable)")
    report.add_argument("--lang", default="en", choices=LANGS, help="language of the report (default en)")
    report.add_argument("--role", choices=ROLE_NAMES,
                        help="build it as this role sees the data: a viewer's report has no customer rows "
                             "(default: everything)")
    report.add_argument("--scope", action="append", metavar="COLUMN=VALUE",
                        help=f"limit the rows, as for a user; repeatable; columns: {', '.join(SCOPE_COLUMNS)}")
    report.set_defaults(func=report_command)


def _path(text: str):
    from pathlib import Path

    return Path(text).expanduser()


def _formats(text: str) -> str:
    from dashboard.reports.build import ReportError, check_formats

    try:
        return ",".join(check_formats(text.split(",")))
    except ReportError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
