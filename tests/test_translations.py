"""Every string the code marks for translation has a Spanish and a Russian translation, with the
same placeholders; every page, opened as a browser's router opens it (with its initial
callbacks), shows no English text in Spanish or Russian.

The msgids are extracted from the code itself with Babel (as ``pybabel extract`` does), so a new
``_("...")`` without a translation fails here, not in front of a reader."""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from dashboard import i18n

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{[a-z_0-9]*(?::[^}]*)?\}")
# Keys of Dash components and Plotly figures whose strings a reader sees (ids, values, class
# names and URLs are not text).
SHOWN = {"children", "label", "title", "text", "name", "placeholder", "aria-label", "headerName",
         "description", "alt", "hint", "content"}


@cache
def code_msgids() -> dict[str, str | None]:
    """msgid -> plural msgid (or None), as Babel extracts them from dashboard/**.py."""
    found: dict[str, str | None] = {}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map=[("dashboard/**.py", "python")],
            keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}):
        if isinstance(message, tuple):
            found[message[0]] = message[1]
        else:
            found[message] = None
    return found


@cache
def catalog(lang: str):
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def test_the_code_has_hundreds_of_translatable_strings():
    assert len(code_msgids()) > 300   # the pages, figures, messages and reports


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_every_string_of_the_code_is_translated(lang):
    translations = catalog(lang)
    missing = []
    for msgid, plural in code_msgids().items():
        message = translations.get(msgid)
        strings = [] if message is None else (list(message.string) if plural else [message.string])
        if message is None or not all(strings) or message.fuzzy:
            missing.append(msgid)
    assert not missing, f"{len(missing)} strings have no {lang} translation, e.g. {missing[:10]}"


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_translations_keep_the_placeholders(lang):
    wrong = []
    for message in catalog(lang):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        wrong += [(ids[0], s) for s in strings if set(PLACEHOLDER.findall(s)) != wanted]
    assert not wrong, wrong[:10]


def test_russian_plurals_have_three_forms():
    plurals = [m for m in catalog("ru") if isinstance(m.id, tuple)]
    assert all(len(m.string) == 3 for m in plurals)


# --- every page, every language --------------------------------------------------------------


def _english_texts() -> set[str]:
    """msgids a reader must never see untranslated: their translation differs in both languages."""
    texts = set()
    for msgid in code_msgids():
        es, ru = catalog("es").get(msgid), catalog("ru").get(msgid)
        if es and ru and es.string != msgid and ru.string != msgid and not PLACEHOLDER.search(msgid):
            texts.add(msgid)
    return texts


def _shown_strings(node, key: str | None = None):
    """Every string under a key a reader sees, in a component tree or figure (JSON form)."""
    if isinstance(node, dict):
        if (node.get("props") or {}).get("lang") == "en":
            return   # said to be English on purpose (the ETL's reasons as written)
        for k, v in node.items():
            yield from _shown_strings(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _shown_strings(item, key)
    elif isinstance(node, str) and key in SHOWN:
        yield node.strip()


def _pages(app) -> list[str]:
    import dash

    return [p["path"] for p in dash.page_registry.values() if "{" not in p["path"]]


@pytest.fixture(scope="module")
def admin_app(dashboard_data, tmp_path_factory):
    """The app as the loopback visitor of ``make run`` (AUTH=none: an admin) sees it."""
    from tests.conftest import loopback_admin_env

    with pytest.MonkeyPatch.context() as patch:
        loopback_admin_env(patch, tmp_path_factory.mktemp("state"), dashboard_data["scored"], dashboard_data["models"])
        from dashboard.app import create_app

        yield create_app()


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_every_page_shows_no_english_in_another_language(admin_app, lang):
    from benchmarks.dashclient import DashClient

    english = _english_texts()
    client = admin_app.server.test_client()
    client.environ_base["HTTP_X_SHOPPER_LANG"] = lang
    browser = DashClient(admin_app, client=client)
    shell = set(_shown_strings(browser.shell))
    untranslated = {}
    for path in _pages(admin_app):
        browser.open(path)
        seen = set(_shown_strings(browser.tree)) | shell
        left = sorted(seen & english)
        if left:
            untranslated[path] = left
    assert not untranslated, f"English text shown in {lang}: {untranslated}"


@pytest.mark.parametrize("lang", ["en", "es", "ru"])
def test_every_page_opens_in_every_language(admin_app, lang):
    """Opened with its initial callbacks (the chain a browser runs), no page fails."""
    from benchmarks.dashclient import DashClient

    client = admin_app.server.test_client()
    client.environ_base["HTTP_X_SHOPPER_LANG"] = lang
    browser = DashClient(admin_app, client=client)
    for path in _pages(admin_app):
        response = client.get(f"{path}?lang={lang}")
        assert response.status_code == 200 and f'<html lang="{lang}">' in response.get_data(as_text=True)
        browser.open(path)   # raises on an HTTP error or the app's error message
        # a page that failed to draw says so in its own alert, in the reader's language
        assert "page-error" not in json.dumps(browser.tree), (path, lang)


# Latin words a Russian page may show: the product's name, metric and format names, the
# settings an administrator types, and the data's file and column names.
LATIN_IN_RUSSIAN = {"english", "espa", "xlsx",   # the language switcher names each language in itself
                    "shopper", "insights", "brier", "auc", "roc", "csv", "png", "svg", "json", "html",
                    "pdf", "psi", "oidc", "smtp", "auth", "none", "duckdb", "etl", "refresh", "python",
                    "make", "run", "train", "shap"}
LATIN_WORD = re.compile(r"[A-Za-z]{4,}")
# paths, file names, settings and identifiers (``data/raw``, ``market_file.csv``, ``max_depth=3``)
CODE_LIKE = re.compile(r"\S*[/_=.@]\S*[A-Za-z0-9]")


def test_a_russian_page_shows_no_english_words(admin_app):
    """Wider than the msgid check: English that was never marked for translation shows too."""
    from benchmarks.dashclient import DashClient

    client = admin_app.server.test_client()
    client.environ_base["HTTP_X_SHOPPER_LANG"] = "ru"
    browser = DashClient(admin_app, client=client)
    found = {}
    for path in _pages(admin_app):
        browser.open(path)
        words = {w for text in _shown_strings(browser.tree) for w in LATIN_WORD.findall(CODE_LIKE.sub(" ", text))
                 if w.lower() not in LATIN_IN_RUSSIAN}
        if words:
            found[path] = sorted(words)
    assert not found, f"English words on Russian pages: {found}"
