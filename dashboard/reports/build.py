"""Build one report now: collect, render, archive, record its KPI snapshot, copy out.

:func:`build_report` is what ``python -m dashboard report``, the scheduler and the Reports
page's "build now" call. The report is written into the archive's private staging folder and
renamed into place only when every file and the manifest are written, so a failure leaves
nothing half-written in the archive (and raises :class:`ReportError` with one readable line).
"""
from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from dashboard.auth.identity import SYSTEM, Identity
from dashboard.i18n import LANGS, CatalogError
from dashboard.reports import history
from dashboard.reports.archive import FILES, Archive, Delivery, Manifest, new_id

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf")
TRIGGERS = ("command", "schedule", "page")


class ReportError(Exception):
    """A report could not be built; ``message`` says why (and what to run or install)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if not chosen or unknown:
        raise ReportError(f"a report format is one of {', '.join(FORMATS)}, got {', '.join(unknown) or 'none'}")
    return chosen


def _recipients(addresses: Iterable[str]) -> list[str]:
    from dashboard.reports.delivery import check_address

    try:
        return list(dict.fromkeys(check_address(a) for a in addresses))
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def default_formats(progress: Callable[[str], object] = print) -> tuple[str, ...]:
    """HTML and PDF; HTML alone (said once) where no Chromium is installed to print the PDF,
    so a scheduled report on a machine set up by `make run` alone is still delivered."""
    from dashboard.reports import render

    if render.chromium() is None:
        progress("PDF left out: no Chromium to print it (apt-get install chromium)")
        return ("html",)
    return FORMATS


def build_report(*, identity: Identity = SYSTEM, lang: str = "en", formats: Iterable[str] | None = None,
                 trigger: str = "command", out: Path | None = None, progress: Callable[[str], object] = print,
                 recipients: Iterable[str] = (), archive: Archive | None = None) -> Manifest:
    """Build a report for ``identity`` (its role and scope decide what it shows) in ``lang``
    and archive it; ``recipients`` are recorded as pending deliveries (sending is
    :func:`dashboard.reports.delivery.deliver`'s job). Returns the archived manifest."""
    from dashboard.reports import content as report_content
    from dashboard.reports import render
    from dashboard.source import Unavailable

    if lang not in LANGS:
        raise ReportError(f"a report language is one of {', '.join(LANGS)}, got {lang!r}")
    if trigger not in TRIGGERS:
        raise ReportError(f"a report trigger is one of {', '.join(TRIGGERS)}, got {trigger!r}")
    formats = check_formats(default_formats(progress) if formats is None else formats)
    addresses = _recipients(recipients)
    archive = archive or Archive()
    try:
        if "pdf" in formats:
            render.require_chromium()        # before minutes of work, not after
        progress(f"reading the warehouse as {identity.role.label}"
                 + (f" ({identity.scope.key()})" if not identity.scope.unrestricted else ""))
        content = report_content.collect(identity, lang, archive=archive)
    except Unavailable as exc:
        raise ReportError(f"{exc.message} Run `{exc.command}`.") from None
    except (render.RenderError, CatalogError, ValueError) as exc:
        log.debug("report not built", exc_info=True)
        raise ReportError(str(exc)) from None

    report_id = new_id(content.created)
    manifest = Manifest(id=report_id, created=content.created.isoformat(timespec="seconds"),
                        data_version=content.data_version, lang=lang, role=identity.role.label,
                        scope=list(content.scope), formats=list(formats), headline=content.headline(),
                        trigger=trigger, deliveries=[Delivery(to=a) for a in addresses])
    try:
        with archive.staging(report_id) as folder:
            html_file = folder / FILES["html"]
            progress("writing the HTML report")
            html_file.write_text(render.render_html(content), encoding="utf-8")
            if "pdf" in formats:
                progress("printing the PDF with headless Chromium")
                render.render_pdf(html_file, folder / FILES["pdf"])
            if "html" not in formats:
                html_file.unlink()
            archive.write_manifest(folder, manifest)
    except render.RenderError as exc:
        raise ReportError(str(exc)) from None
    except OSError as exc:
        raise ReportError(f"the report could not be written to {archive.root}: {exc.strerror or exc}") from None
    progress(f"archived report {report_id} in {archive.folder(report_id)}")

    if content.warehouse_kpis is not None:
        try:
            history.append(source="report", data_version=content.data_version, kpis=content.warehouse_kpis,
                           report_id=report_id)
        except Exception as exc:  # noqa: BLE001 - the report is archived; its history line is a bonus
            log.warning("KPI history not updated for report %s: %s", report_id, exc)
    if out is not None:
        copy_out(archive, manifest, Path(out), progress)
    return manifest


def copy_out(archive: Archive, manifest: Manifest, out: Path, progress: Callable[[str], object] = print) -> list[Path]:
    """Copy the report's files to ``out`` as ``shopper-insights-<id>.<html|pdf>``."""
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for kind in manifest.formats:
            target = out / f"shopper-insights-{manifest.id}.{kind}"
            shutil.copyfile(archive.file(manifest.id, kind), target)
            written.append(target)
            progress(f"wrote {target}")
    except OSError as exc:
        raise ReportError(f"the report is archived as {manifest.id} but could not be copied to {out}: "
                          f"{exc.strerror or exc}") from None
    return written

