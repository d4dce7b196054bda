"""Mailing an archived report: one mail per recipient, HTML in the body, PDF attached.

Settings (read at call time):

| variable | default | meaning |
|---|---|---|
| ``SMTP_URL`` | (unset: nothing can be sent, and each delivery says so) | ``smtp://user:pass@host:25`` (plain), ``smtp+starttls://…:587`` (STARTTLS required), ``smtps://…:465`` (implicit TLS); user and password percent-encoded |
| ``SMTP_TIMEOUT`` | ``30`` | seconds for connecting and for each SMTP command |
| ``REPORT_FROM`` | ``Shopper Insights <reports@HOSTNAME>`` | the sender |

Archive first, then send: a report is only ever mailed from the archive, and each recipient
has a delivery record in its manifest (:class:`~dashboard.reports.archive.Delivery`). A send
is *claimed* before it starts (attempt counted, next attempt set), so a process that dies while
sending leaves a record that is retried later, never a mail that is silently forgotten. A
failed attempt is retried 1 min, 5 min, 30 min and 2 h later; the fifth failure marks the
delivery ``failed`` (shown on the Reports page; :func:`requeue` sends it again). Every message
that could carry the SMTP credentials (an error, a log line) goes through :func:`redact`.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import quote, unquote, urlsplit

from dashboard.i18n import MISSING
from dashboard.language import _, using_lang
from dashboard.reports.archive import Archive, Delivery, Manifest

log = logging.getLogger(__name__)

SCHEMES = {"smtp": (25, "plain"), "smtp+starttls": (587, "starttls"), "smtps": (465, "tls")}
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
MAX_ATTEMPTS = len(BACKOFF) + 1          # the fifth failure is final
ERROR_LIMIT = 300
_URL_CREDENTIALS = re.compile(r"(?i)\b(smtps?(?:\+starttls)?://)[^@\s]*@")
# one plain address; a domain without a dot (root@localhost) is fine for a local relay
_SIMPLE_ADDRESS = re.compile(r"[^@\s<>,;\"'()\[\]\\]+@[^@\s<>,;\"'()\[\]\\.][^@\s<>,;\"'()\[\]\\]*")


class DeliveryConfigError(ValueError):
    """SMTP_URL, REPORT_FROM or a recipient is unusable; the message says which (no password)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str                 # plain | starttls | tls
    user: str | None
    password: str | None
    sender: str
    timeout: float

    def secrets(self) -> list[str]:
        """The texts :func:`redact` must never let through."""
        if not self.password:
            return []
        return sorted({self.password, quote(self.password, safe=""), quote(self.password)}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without credentials: any ``smtp…://user:pass@`` becomes ``smtp…://***@`` and
    each known secret (the password, also percent-encoded) becomes ``***``."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _url_secrets() -> list[str]:
    """The password of ``SMTP_URL`` even when the URL cannot be parsed as a whole."""
    raw = os.environ.get("SMTP_URL", "")
    userinfo = raw.partition("://")[2].rpartition("@")[0] if "@" in raw else ""
    password = userinfo.partition(":")[2]
    return [s for s in {password, unquote(password)} if s]


def smtp_settings() -> SmtpSettings:
    """The settings from the environment; :class:`DeliveryConfigError` when unusable."""
    raw = os.environ.get("SMTP_URL", "").strip()
    if not raw:
        raise DeliveryConfigError("SMTP_URL is not set: no mail can be sent "
                                  "(e.g. smtp+starttls://user:password@mail.example.com:587)")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise DeliveryConfigError(f"SMTP_URL is not a URL: {redact(str(exc), _url_secrets())}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise DeliveryConfigError(f"SMTP_URL must start with {', '.join(s + '://' for s in SCHEMES)}, got {scheme!r}")
    if not parts.hostname:
        raise DeliveryConfigError("SMTP_URL names no host")
    default_port, security = SCHEMES[scheme]
    try:
        timeout = float(os.environ.get("SMTP_TIMEOUT", "30"))
    except ValueError:
        raise DeliveryConfigError("SMTP_TIMEOUT must be a number of seconds") from None
    sender = os.environ.get("REPORT_FROM", "").strip() or f"Shopper Insights <reports@{socket.gethostname()}>"
    if not _SIMPLE_ADDRESS.fullmatch(parseaddr(sender)[1]) or any(c in sender for c in "\r\n"):
        raise DeliveryConfigError(f"REPORT_FROM is not a mail address: {sender!r}")
    return SmtpSettings(host=parts.hostname, port=port or default_port, security=security,
                        user=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None,
                        sender=sender, timeout=timeout)


def check_address(text: str) -> str:
    """One recipient address (``name@host``), stripped; :class:`DeliveryConfigError` for
    anything else, a header break or a second address included."""
    address = text.strip()
    if not _SIMPLE_ADDRESS.fullmatch(address):
        raise DeliveryConfigError(f"not a mail address: {address!r}")
    return address


# --- the mail ------------------------------------------------------------------------------


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone()


def headline_items(headline: dict, limit: int | None = None) -> list[tuple[str, str]]:
    """``[(label, formatted value), ...]`` of a manifest's headline KPIs, in their order, in the
    current language (the KPI history's titles and formats)."""
    from dashboard.figures.history import look, shown

    items = []
    for name, value in headline.items():
        title, kind = look(name)
        items.append((title, shown(value, kind) if isinstance(value, (int, float)) else MISSING))
    return items if limit is None else items[:limit]


def subject_of(manifest: Manifest) -> str:
    """``Shopper Insights report 2026-11-30: Abandonment rate 88.2%, Activity declined 38.1%``, in
    the report's language."""
    with using_lang(manifest.lang):
        headline = ", ".join(f"{name} {value}" for name, value in headline_items(manifest.headline, 2))
        date = _local(manifest.created).strftime("%Y-%m-%d")
        subject = _("Shopper Insights report {date}").format(date=date)
    return subject + (f": {headline}" if headline else "")


def compose(archive: Archive, manifest: Manifest, to: str, sender: str) -> EmailMessage:
    """The mail for one recipient: a plain-text summary, the HTML report as the alternative
    body, the PDF attached when the report has one."""
    message = EmailMessage()
    message["Subject"] = subject_of(manifest)
    message["From"] = sender
    message["To"] = Address(addr_spec=to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
    with using_lang(manifest.lang):   # the summary in the report's language, like the report
        lines = [subject_of(manifest), "",
                 *(f"{name}: {value}" for name, value in headline_items(manifest.headline)), "",
                 _("Data version {version}.").format(version=manifest.data_version),
                 _("The report is in this mail as HTML and attached as PDF.") if "pdf" in manifest.formats
                 else _("The report is in this mail as HTML.")]
    message.set_content("\n".join(lines))
    try:
        html = archive.file(manifest.id, "html").read_text(encoding="utf-8")
        message.add_alternative(html, subtype="html")
    except FileNotFoundError:
        pass   # a PDF-only report: the summary is the body
    if "pdf" in manifest.formats:
        pdf = archive.file(manifest.id, "pdf").read_bytes()
        date = _local(manifest.created).strftime("%Y-%m-%d")
        message.add_attachment(pdf, maintype="application", subtype="pdf",
                               filename=f"shopper-insights-report-{date}.pdf")
    return message


# --- sending -------------------------------------------------------------------------------


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "tls":
        server = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                  context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        server.ehlo()
        if settings.security == "starttls":
            # required, not opportunistic: smtplib raises when the server does not offer it
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
        if settings.user:
            server.login(settings.user, settings.password or "")
    except BaseException:
        server.close()
        raise
    return server


def _error_text(exc: BaseException, secrets: list[str]) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        text = f"recipient refused: {code} {reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        text = f"{type(exc).__name__}: {exc.smtp_code} {reply}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(" ".join(text.split()), secrets)[:ERROR_LIMIT]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def is_due(delivery: Delivery, now: datetime) -> bool:
    return delivery.status == "pending" and (
        delivery.next_attempt is None or datetime.fromisoformat(delivery.next_attempt) <= now)


def after_failure(delivery: Delivery, error: str, now: datetime) -> Delivery:
    """The record after failed attempt number ``delivery.attempts`` (already counted)."""
    if delivery.attempts >= MAX_ATTEMPTS:
        return replace(delivery, status="failed", last_error=error, next_attempt=None)
    wait = BACKOFF[max(0, delivery.attempts - 1)]
    return replace(delivery, status="pending", last_error=error, next_attempt=_iso(now + wait))


def queue(archive: Archive, report_id: str, recipients: Iterable[str]) -> Manifest:
    """Add a pending delivery for each new recipient of an archived report (validated; one
    already recorded keeps its record, so queueing twice never mails twice)."""
    addresses = list(dict.fromkeys(check_address(r) for r in recipients))
    manifest = archive.read(report_id)
    known = {d.to for d in manifest.deliveries}
    for address in addresses:
        if address not in known:
            manifest = archive.record_delivery(report_id, Delivery(to=address))
    return manifest


def requeue(archive: Archive, report_id: str, to: str) -> Manifest:
    """Send a ``failed`` delivery again from the start (its last error stays until then)."""
    found = next((d for d in archive.read(report_id).deliveries if d.to == to), None)
    if found is None:
        raise KeyError(to)
    return archive.record_delivery(report_id, replace(found, status="pending", attempts=0, next_attempt=None))


class _Busy(Exception):
    """Another process is sending this report's mails now."""


class _SendLock:
    """One sender per report at a time (scheduler processes on several hosts, a web worker):
    the due records are read and claimed under it, so no mail goes out twice."""

    def __init__(self, archive: Archive, report_id: str) -> None:
        self.path = archive.folder(report_id) / ".send.lock"

    def __enter__(self):
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise _Busy() from None
        return self

    def __exit__(self, *_exc):
        self.handle.close()   # closing drops the lock


def deliver(archive: Archive, report_id: str, *, now: datetime | None = None) -> Manifest:
    """Send every due delivery of an archived report (pending, next attempt reached); record
    each outcome in its manifest and return the manifest. Never raises for a failed send: the
    failure is in the record (and one log line)."""
    now = _now(now)
    try:
        with _SendLock(archive, report_id):
            return _deliver_locked(archive, report_id, now)
    except _Busy:
        log.info("report %s: another process is sending its mails; skipped", report_id)
        return archive.read(report_id)


def _deliver_locked(archive: Archive, report_id: str, now: datetime) -> Manifest:
    manifest = archive.read(report_id)
    due = [d for d in manifest.deliveries if is_due(d, now)]
    if not due:
        return manifest
    secrets = _url_secrets()
    # claim first: a process that dies while sending leaves a record that is retried later
    claimed = []
    for delivery in due:
        attempt = replace(delivery, attempts=delivery.attempts + 1,
                          next_attempt=_iso(now + BACKOFF[min(delivery.attempts, len(BACKOFF) - 1)]))
        manifest = archive.record_delivery(report_id, attempt)
        claimed.append(attempt)
    try:
        settings = smtp_settings()
        secrets = sorted({*secrets, *settings.secrets()}, key=len, reverse=True)
        server = _connect(settings)
    except Exception as exc:   # noqa: BLE001 - configuration, DNS, refused, TLS, login: the same for all
        error = exc.args[0] if isinstance(exc, DeliveryConfigError) else _error_text(exc, secrets)
        return _all_failed(archive, report_id, claimed, redact(error, secrets)[:ERROR_LIMIT], now)
    try:
        for index, attempt in enumerate(claimed):
            try:
                message = compose(archive, manifest, attempt.to, settings.sender)
            except OSError as exc:   # a file of the archived report is missing or unreadable
                manifest = _failed(archive, report_id, attempt, _error_text(exc, secrets), now)
                continue
            try:
                server.send_message(message)
            except smtplib.SMTPServerDisconnected as exc:
                return _all_failed(archive, report_id, claimed[index:], _error_text(exc, secrets), now)
            except smtplib.SMTPException as exc:   # this recipient (or this message) was refused
                manifest = _failed(archive, report_id, attempt, _error_text(exc, secrets), now)
                continue
            except OSError as exc:   # the connection broke (reset, timeout)
                return _all_failed(archive, report_id, claimed[index:], _error_text(exc, secrets), now)
            sent = replace(attempt, status="sent", sent_at=_iso(now), next_attempt=None)
            manifest = archive.record_delivery(report_id, sent)
            log.info("report %s sent to %s (attempt %d)", report_id, attempt.to, attempt.attempts)
    finally:
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            server.close()
    return manifest


def _failed(archive: Archive, report_id: str, attempt: Delivery, error: str, now: datetime) -> Manifest:
    record = after_failure(attempt, error, now)
    if record.status == "failed":
        log.error("report %s to %s failed for good after %d attempts: %s", report_id, record.to,
                  record.attempts, error)
    else:
        log.warning("report %s to %s failed (attempt %d of %d, next at %s): %s", report_id, record.to,
                    record.attempts, MAX_ATTEMPTS, record.next_attempt, error)
    return archive.record_delivery(report_id, record)


def _all_failed(archive: Archive, report_id: str, attempts: list[Delivery], error: str, now: datetime) -> Manifest:
    manifest = archive.read(report_id)
    for attempt in attempts:
        manifest = _failed(archive, report_id, attempt, error, now)
    return manifest


def retry_due(archive: Archive, now: datetime | None = None) -> list[Manifest]:
    """Send every due delivery of every archived report; the manifests that had some."""
    now = _now(now)
    touched = []
    for manifest in archive.list():
        if any(is_due(d, now) for d in manifest.deliveries):
            touched.append(deliver(archive, manifest.id, now=now))
    return touched
