"""A stand-in report written into a real archive the way the builder writes one (a staging
folder renamed into place, then its manifest), for the tests of delivery, schedule and the
Reports page, which must not depend on how long a real build takes."""
from __future__ import annotations

from datetime import datetime, timezone

from dashboard.reports.archive import Archive, Delivery, Manifest, new_id

HTML_MARKER = "stand-in report body"


def tiny_pdf(text: str = "Shopper Insights report") -> bytes:
    """A valid one-page PDF with ``text`` on it (pdftotext reads it back)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def standin_report(archive: Archive, *, role: str = "viewer", scope: list[str] | None = None,
                   formats: tuple[str, ...] = ("html", "pdf"), created: datetime | None = None,
                   headline: dict | None = None, trigger: str = "command", recipients: tuple[str, ...] = (),
                   lang: str = "en") -> Manifest:
    created = created or datetime.now(timezone.utc)
    manifest = Manifest(
        id=new_id(created), created=created.isoformat(timespec="seconds"), data_version="dv-0123456789abcdef",
        lang=lang, role=role, scope=list(scope or []), formats=list(formats),
        headline=headline if headline is not None else {"abandonment_rate": 0.8821, "declined_share": 0.3812,
                                                        "customers": 1296},
        trigger=trigger, deliveries=[Delivery(to=address) for address in recipients])
    with archive.staging(manifest.id) as folder:
        if "html" in formats:
            (folder / "report.html").write_text(
                f"<!doctype html><html><body><h1>Shopper Insights</h1><p>{HTML_MARKER} ({role})</p></body></html>",
                encoding="utf-8")
        if "pdf" in formats:
            (folder / "report.pdf").write_bytes(tiny_pdf())
        archive.write_manifest(folder, manifest)
    return manifest


def install_standin_build(delay: float = 0.0) -> None:
    """Put a stand-in ``dashboard.reports.build`` in ``sys.modules`` (the real builder is
    another module's work and takes a Chromium run): it waits ``delay`` seconds, as a build
    does, then archives a stand-in report for the identity's role."""
    import sys
    import time
    import types

    module = types.ModuleType("dashboard.reports.build")

    class ReportError(Exception):
        pass

    def build_report(*, identity=None, lang="en", formats=("html", "pdf"), trigger="command", out=None,
                     progress=print, recipients=(), archive=None) -> Manifest:
        progress("stand-in build")
        time.sleep(delay)
        role = identity.role.label if identity is not None else "admin"
        return standin_report(archive or Archive(), role=role, formats=tuple(formats), trigger=trigger,
                              recipients=tuple(recipients))

    module.ReportError, module.build_report = ReportError, build_report
    sys.modules["dashboard.reports.build"] = module


def standin_main() -> None:
    """``python -c "from tests.report_standin import standin_main; standin_main()" schedule --once``:
    ``python -m dashboard`` with the stand-in builder (``STANDIN_BUILD_SECONDS`` long)."""
    import os
    import sys

    install_standin_build(float(os.environ.get("STANDIN_BUILD_SECONDS", "0")))
    from dashboard.cli import main

    sys.exit(main(sys.argv[1:]))
