"""Report delivery against a REAL SMTP server (aiosmtpd on a free loopback port): the mail
arrives with the HTML report as its body and the PDF attached; a failed send is recorded,
retried with back-off (1 min, 5 min, 30 min, 2 h, then failed) and sent once the server is
back; the SMTP credentials never reach a manifest or a log line."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import ssl
from datetime import timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from dashboard.reports import delivery
from localservers import free_port
from dashboard.reports.archive import Archive
from tests.report_standin import HTML_MARKER, standin_report

PASSWORD = "s3cr#t/pa:ss"
PASSWORD_IN_URL = "s3cr%23t%2Fpa%3Ass"
T0 = dt.datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)


class Inbox:
    """The SMTP server's side: what arrived, which logins it saw, recipients it refuses."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.logins: list[tuple[str, str]] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == ("reports", PASSWORD), handled=False)


def smtp_server(inbox: Inbox, port: int, **kwargs) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                            auth_require_tls=False, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def archive(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("REPORT_FROM", "Shopper Insights <reports@shop.example>")
    monkeypatch.setenv("SMTP_TIMEOUT", "10")
    return Archive()


@pytest.fixture
def inbox():
    return Inbox(refuse=("nobody@shop.example",))


@pytest.fixture
def server(inbox, monkeypatch):
    port = free_port()
    controller = smtp_server(inbox, port)
    monkeypatch.setenv("SMTP_URL", f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{port}")
    yield controller
    controller.stop()


def no_secret_in(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and PASSWORD_IN_URL not in text and "s3cr" not in text


def test_the_mail_arrives_with_the_html_body_and_the_pdf_attached(archive, server, inbox, caplog):
    caplog.set_level(logging.DEBUG)
    report = standin_report(archive)
    delivery.queue(archive, report.id, ["ana@shop.example", "bob@shop.example", "ana@shop.example "])
    manifest = delivery.deliver(archive, report.id)

    assert {d.to: d.status for d in manifest.deliveries} == {"ana@shop.example": "sent", "bob@shop.example": "sent"}
    assert all(d.attempts == 1 and d.sent_at and d.last_error is None for d in manifest.deliveries)
    assert inbox.logins == [("reports", PASSWORD)] * 1            # one connection for both mails
    assert sorted(to for to, _ in inbox.messages) == [["ana@shop.example"], ["bob@shop.example"]]
    _, mail = inbox.messages[0]
    date = dt.datetime.fromisoformat(report.created).astimezone().strftime("%Y-%m-%d")
    assert mail["Subject"] == f"Shopper Insights report {date}: Abandonment rate 88.2%, Activity declined 38.1%"
    assert mail["From"] == "Shopper Insights <reports@shop.example>"
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and HTML_MARKER in html.get_content()
    assert "Customers: 1,296" in mail.get_body(preferencelist=("plain",)).get_content()
    attachments = list(mail.iter_attachments())
    assert [(a.get_content_type(), a.get_filename()) for a in attachments] == [
        ("application/pdf", f"shopper-insights-report-{date}.pdf")]
    assert attachments[0].get_content() == archive.file(report.id, "pdf").read_bytes()

    # delivered once: another pass (the scheduler's retry) sends nothing more
    assert delivery.retry_due(archive, T0 + timedelta(days=30)) == []
    assert len(inbox.messages) == 2
    no_secret_in(caplog.text, (archive.folder(report.id) / "manifest.json").read_text())


def test_a_russian_report_is_mailed_with_a_russian_subject_and_summary(archive, server, inbox):
    report = standin_report(archive, lang="ru")
    delivery.queue(archive, report.id, ["ana@shop.example"])
    assert delivery.deliver(archive, report.id).deliveries[0].status == "sent"
    (_, mail), = inbox.messages
    date = dt.datetime.fromisoformat(report.created).astimezone().strftime("%Y-%m-%d")
    assert mail["Subject"].startswith(f"Отчёт Shopper Insights {date}: ")
    assert "88,2\u00a0%" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "Покупатели: 1\u00a0296" in text and "PDF" in text and "Data version" not in text


def test_a_report_without_pdf_is_mailed_as_html_only(archive, server, inbox):
    report = standin_report(archive, formats=("html",))
    delivery.queue(archive, report.id, ["ana@shop.example"])
    assert delivery.deliver(archive, report.id).deliveries[0].status == "sent"
    (_, mail), = inbox.messages
    assert list(mail.iter_attachments()) == [] and HTML_MARKER in mail.get_body(("html",)).get_content()


def test_server_down_is_retried_with_back_off_shown_in_the_manifest_then_sent(archive, inbox, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    port = free_port()   # nothing listens there yet
    monkeypatch.setenv("SMTP_URL", f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{port}")
    report = standin_report(archive)
    delivery.queue(archive, report.id, ["ana@shop.example"])

    (first,) = delivery.deliver(archive, report.id, now=T0).deliveries
    assert (first.status, first.attempts, first.sent_at) == ("pending", 1, None)
    assert "ConnectionRefusedError" in first.last_error
    assert first.next_attempt == (T0 + timedelta(minutes=1)).isoformat()
    # not due yet: nothing is tried
    assert delivery.retry_due(archive, T0 + timedelta(seconds=59)) == []
    (second,) = delivery.retry_due(archive, T0 + timedelta(minutes=1))[0].deliveries
    assert second.attempts == 2 and second.next_attempt == (T0 + timedelta(minutes=6)).isoformat()

    controller = smtp_server(inbox, port)   # the server is back
    try:
        assert delivery.retry_due(archive, T0 + timedelta(minutes=5)) == []   # still waiting its turn
        assert inbox.messages == []
        (third,) = delivery.retry_due(archive, T0 + timedelta(minutes=6))[0].deliveries
    finally:
        controller.stop()
    assert (third.status, third.attempts) == ("sent", 3) and third.sent_at == (T0 + timedelta(minutes=6)).isoformat()
    assert [to for to, _ in inbox.messages] == [["ana@shop.example"]]
    failures = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == delivery.log.name]
    assert len(failures) == 2 and all("\n" not in r.getMessage() for r in failures)
    assert "ana@shop.example failed (attempt 1 of 5" in failures[0].getMessage()
    no_secret_in(caplog.text, (archive.folder(report.id) / "manifest.json").read_text())


def test_after_five_failures_the_delivery_is_failed_for_good_and_can_be_requeued(archive, server, inbox, monkeypatch):
    good_url = delivery.os.environ["SMTP_URL"]
    monkeypatch.setenv("SMTP_URL", f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{free_port()}")
    report = standin_report(archive)
    delivery.queue(archive, report.id, ["ana@shop.example"])
    now, waits = T0, []
    for _ in range(delivery.MAX_ATTEMPTS):
        (record,) = delivery.deliver(archive, report.id, now=now).deliveries
        if record.next_attempt:
            wait = dt.datetime.fromisoformat(record.next_attempt) - now
            waits.append(wait)
            now += wait
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]
    assert (record.status, record.attempts, record.next_attempt) == ("failed", 5, None)
    assert delivery.retry_due(archive, now + timedelta(days=1)) == []       # no sixth attempt by itself

    monkeypatch.setenv("SMTP_URL", good_url)
    delivery.requeue(archive, report.id, "ana@shop.example")
    (record,) = delivery.retry_due(archive, now)[0].deliveries
    assert record.status == "sent" and len(inbox.messages) == 1


def test_a_refused_recipient_fails_alone_and_a_wrong_password_is_shown_without_it(archive, server, inbox,
                                                                                   monkeypatch, caplog):
    report = standin_report(archive)
    delivery.queue(archive, report.id, ["nobody@shop.example", "ana@shop.example"])
    manifest = delivery.deliver(archive, report.id, now=T0)
    found = {d.to: d for d in manifest.deliveries}
    assert found["ana@shop.example"].status == "sent"
    refused = found["nobody@shop.example"]
    assert refused.status == "pending" and "550" in refused.last_error and "mailbox unavailable" in refused.last_error

    port = delivery.smtp_settings().port
    monkeypatch.setenv("SMTP_URL", f"smtp://reports:wrong{PASSWORD_IN_URL}@127.0.0.1:{port}")
    other = standin_report(archive)
    delivery.queue(archive, other.id, ["ana@shop.example"])
    (record,) = delivery.deliver(archive, other.id, now=T0).deliveries
    assert "SMTPAuthenticationError: 535" in record.last_error
    no_secret_in(caplog.text, record.last_error, (archive.folder(other.id) / "manifest.json").read_text())


def test_without_smtp_url_each_delivery_says_so(archive, monkeypatch):
    monkeypatch.delenv("SMTP_URL", raising=False)
    report = standin_report(archive)
    delivery.queue(archive, report.id, ["ana@shop.example"])
    (record,) = delivery.deliver(archive, report.id, now=T0).deliveries
    assert record.status == "pending" and record.last_error.startswith("SMTP_URL is not set")


def _tls_context(tmp_path):
    """A self-signed certificate for 127.0.0.1, trusted by the client through SSL_CERT_FILE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


@pytest.mark.parametrize("scheme", ["smtps", "smtp+starttls"])
def test_tls_is_used_and_verified(archive, inbox, monkeypatch, tmp_path, scheme):
    context, cert_file = _tls_context(tmp_path)
    port = free_port()
    if scheme == "smtps":
        controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context,
                                authenticator=inbox.authenticate, auth_require_tls=False)
    else:
        controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                                require_starttls=True, authenticator=inbox.authenticate)
    controller.start()
    monkeypatch.setenv("SMTP_URL", f"{scheme}://reports:{PASSWORD_IN_URL}@127.0.0.1:{port}")
    report = standin_report(archive)
    delivery.queue(archive, report.id, ["ana@shop.example"])
    try:
        (untrusted,) = delivery.deliver(archive, report.id, now=T0).deliveries   # the certificate is not trusted
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        (trusted,) = delivery.deliver(archive, report.id, now=T0 + timedelta(minutes=1)).deliveries
    finally:
        controller.stop()
    assert untrusted.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
    assert trusted.status == "sent" and len(inbox.messages) == 1


# --- settings and pure parts ------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("smtp://mail.example.com", ("mail.example.com", 25, "plain", None, None)),
    (f"smtp+starttls://reports:{PASSWORD_IN_URL}@mail.example.com", ("mail.example.com", 587, "starttls", "reports", PASSWORD)),
    ("smtps://a%40b:pw@mail.example.com:2465", ("mail.example.com", 2465, "tls", "a@b", "pw")),
])
def test_smtp_url_is_parsed(monkeypatch, url, expected):
    monkeypatch.setenv("SMTP_URL", url)
    found = delivery.smtp_settings()
    assert (found.host, found.port, found.security, found.user, found.password) == expected


@pytest.mark.parametrize("url, message", [
    (f"http://reports:{PASSWORD_IN_URL}@mail.example.com", "SMTP_URL must start with"),
    (f"smtp://reports:{PASSWORD_IN_URL}@mail.example.com:99999", "SMTP_URL is not a URL"),
    (f"smtp://reports:{PASSWORD_IN_URL}@", "SMTP_URL names no host"),
])
def test_a_bad_smtp_url_is_refused_without_its_password(monkeypatch, url, message):
    monkeypatch.setenv("SMTP_URL", url)
    with pytest.raises(delivery.DeliveryConfigError) as caught:
        delivery.smtp_settings()
    assert message in str(caught.value)
    no_secret_in(str(caught.value))


def test_redact_removes_credentials_from_any_text():
    text = f"failed smtp+starttls://reports:{PASSWORD_IN_URL}@mail:587 and SMTPS://x:{PASSWORD}@h, said {PASSWORD}"
    cleaned = delivery.redact(text, [PASSWORD])
    assert cleaned == "failed smtp+starttls://***@mail:587 and SMTPS://***@h, said ***"


@pytest.mark.parametrize("address", ["a@", "@b.org", "a b@c.org", "two@x.org,three@y.org", "x@y.org\r\nBcc: z@w.org", "<a@b.org>", ""])
def test_recipients_are_single_plain_addresses(address):
    with pytest.raises(delivery.DeliveryConfigError):
        delivery.check_address(address)
