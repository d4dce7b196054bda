"""Row-level security in the query layer: what a user's scope does to each table, and the
refusals the pages turn into a short notice.

The scope is applied in one place, :func:`dashboard.source.table`, which calls :func:`restrict`
for every table a request reads; whatever a query computes from there (KPIs, charts, lists,
exports, what-if starting points) only ever sees rows inside the scope:

* ``sessions`` by its scope column (``customer_segment``), ``customers`` by theirs
  (``service_tier``, ``top_category``, ``marketing_consent``);
* the per-row model outputs (``session_scores``, ``customer_scores``,
  ``customer_contributions``) semi-joined to the scoped facts;
* ``segments`` holds totals over every customer, so a scoped user reads them recomputed from
  the scoped scores (and the texts without the all-customer figures written into them);
* ``rejected_rows`` cannot be attributed to a scope: the Data quality queries refuse a scoped
  user outright (dashboard/queries/quality.py); should a scoped read reach the table anyway,
  its raw cells are blanked;
* model-level tables (``model_cards``, ``feature_importances``, ``source_files``,
  ``etl_runs``) as they are.

A subject none of whose columns the scope names is hidden (:meth:`Scope.shows`): reading its
table raises :class:`Forbidden`. Values shared by every user of a process (the cart cube, the
held sessions, the bins) are read unscoped on purpose and filtered by :func:`cart_segments`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import ibis

from dashboard import terms
from dashboard.auth.identity import Capability, Scope
from dashboard.auth.session import current
from dashboard.filters import CartFilters, CustomerFilters
from dashboard.language import N_, _
from etl.schema import (CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, CUSTOMERS, REJECTED_ROWS, SEGMENTS,
                        SESSION_SCORES, SESSIONS)

# The refusals are msgids (marked, translated where they are raised: a Forbidden's message
# is in the reader's language; the page's alert passes it through _() again, harmlessly).
ROWS_NOTE = N_("Customer-level rows need the analyst role.")
START_NOTE = N_("Starting from a real customer or session needs the analyst role.")
RAW_CELLS_NOTE = N_("The raw cells of rejected rows need the analyst role.")
# what a scope that cannot limit a subject does to it, by subject
HIDDEN = {
    "carts": N_("Your access is limited to {scope}; cart sessions cannot be limited that way, so they are not shown."),
    "customers": N_("Your access is limited to {scope}; customers cannot be limited that way, so they are not "
                    "shown."),
}


class Forbidden(Exception):
    """The current identity may not read this; ``message`` says why, in words for the page
    (in the reader's language)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def hidden_message(scope: Scope, subject: str) -> str:
    template = HIDDEN[subject]
    return _(template).format(scope=_scope_words(scope))


def shows(subject: str) -> bool:
    return current().scope.shows(subject)


def default_subject(preferred: str) -> str:
    """The subject a page opens on: ``preferred``, or the other one when the user's scope hides
    it (a customer-scoped user lands on customers, not on a notice)."""
    if shows(preferred):
        return preferred
    return "customers" if preferred == "carts" else "carts"


def require_subject(subject: str) -> None:
    scope = current().scope
    if not scope.shows(subject):
        raise Forbidden(hidden_message(scope, subject))


def can_read_rows() -> bool:
    return current().can(Capability.ROWS)


def require_rows(message: str = ROWS_NOTE) -> None:
    """Customer ids, session ids, raw cells and exports: analysts and admins only."""
    if not can_read_rows():
        raise Forbidden(_(message))


def cart_segments() -> tuple | None:
    """The customer types the current user may see (None: every type); Forbidden when the
    scope hides cart sessions. For the shared cube, which is read unscoped."""
    scope = current().scope
    if scope.unrestricted:
        return None
    require_subject("carts")
    return scope.values("customer_segment")


def allowed_values(column: str, every: tuple | list) -> list:
    """The values of ``column`` a control may offer the current user (``every`` unscoped)."""
    allowed = current().scope.values(column)
    return list(every) if allowed is None else [v for v in every if v in allowed]


# --- filters a request asks for, intersected with the scope --------------------------------


def _outside(kept: tuple, asked: tuple, column: str, scope: Scope, problems: list[str]) -> None:
    dropped = [v for v in asked if v not in kept]
    if dropped:
        problems.append(_("Ignored {filter} {values}: your access is limited to {scope}.").format(
            filter=terms.label(column, _).lower(), values=", ".join(_value(column, v) for v in dropped),
            scope=_scope_words(scope)))


def _value(column: str, value) -> str:
    """A scope value in a sentence ("customer type 3", "service tier premium")."""
    return str(value) if column == "customer_segment" else terms.value(column, value, _)


def _scope_words(scope: Scope) -> str:
    """The scope in the reader's words, as the refusals quote it ("Customer type: 2")."""
    return "; ".join(f"{terms.label(column, _)}: {', '.join(_value(column, v) for v in values)}"
                     for column, values in scope.columns)


def _within(asked: tuple, allowed: tuple | None, column: str, scope: Scope, problems: list[str]) -> tuple:
    """``asked`` (empty: everything) inside ``allowed`` (None: no limit). An intersection that
    comes out empty becomes the allowed values themselves, never an empty "everything"."""
    if allowed is None or not asked:
        return asked
    kept = tuple(v for v in asked if v in allowed)
    _outside(kept, asked, column, scope, problems)
    return kept or tuple(sorted(allowed, key=str))


def clamp_cart_filters(filters: CartFilters, problems: list[str]) -> CartFilters:
    """The filters as the current user may apply them (the cube queries apply the scope again)."""
    scope = current().scope
    if scope.unrestricted:
        return filters
    require_subject("carts")
    return replace(filters, segments=_within(filters.segments, scope.values("customer_segment"),
                                             "customer_segment", scope, problems))


def clamp_customer_filters(filters: CustomerFilters, problems: list[str]) -> CustomerFilters:
    """The filters as the current user may apply them (the table itself is filtered too)."""
    scope = current().scope
    if scope.unrestricted:
        return filters
    require_subject("customers")
    consent, allowed = filters.consent, scope.values("marketing_consent")
    if consent is not None and allowed is not None and consent not in allowed:
        _outside((), (consent,), "marketing_consent", scope, problems)
        consent = allowed[0] if len(allowed) == 1 else None
    return replace(filters, consent=consent,
                   tiers=_within(filters.tiers, scope.values("service_tier"), "service_tier", scope, problems),
                   categories=_within(filters.categories, scope.values("top_category"), "top_category", scope,
                                      problems))


# --- tables ------------------------------------------------------------------------------


def restrict(name: str, t: ibis.Table, scope: Scope, read: Callable[[str], ibis.Table]) -> ibis.Table:
    """Table ``name`` (``t``, unscoped) as a user with ``scope`` may read it; ``read`` gives
    the other unscoped tables the semi-joins need. Forbidden for a hidden subject."""
    if scope.unrestricted:
        return t
    if name == SESSIONS:
        return _facts(t, scope, "carts")
    if name == CUSTOMERS:
        return _facts(t, scope, "customers")
    if name == SESSION_SCORES:
        return t.semi_join(_facts(read(SESSIONS), scope, "carts").select("session_id"), "session_id")
    if name in (CUSTOMER_SCORES, CUSTOMER_CONTRIBUTIONS):
        return t.semi_join(_facts(read(CUSTOMERS), scope, "customers").select("customer_id"), "customer_id")
    if name == SEGMENTS:
        return _segments(t, scope, read)
    if name == REJECTED_ROWS:
        return t.mutate(raw_values=ibis.null("string"))
    return t


def _facts(t: ibis.Table, scope: Scope, subject: str) -> ibis.Table:
    if not scope.shows(subject):
        raise Forbidden(hidden_message(scope, subject))
    return t.filter(*[t[column].isin(list(values)) for column, values in scope.limits(subject).items()])


def _segments(t: ibis.Table, scope: Scope, read: Callable[[str], ibis.Table]) -> ibis.Table:
    """The segments table with its totals over the scoped customers only (segments without
    any left out), and without the all-customer figures its texts quote."""
    customers = _facts(read(CUSTOMERS), scope, "customers")
    scores = read(CUSTOMER_SCORES)
    j = scores.inner_join(customers.select("customer_id", "profit"), "customer_id")
    totals = ibis.union(*[
        j.group_by(segment_id=j[column]).aggregate(
            customers=j.count(), mean_p_decline=j.p_decline.mean(), total_profit=j.profit.sum(),
        ).mutate(kind=ibis.literal(kind))
        for kind, column in (("rule", "segment"), ("cluster", "cluster"))])
    texts = t.select("segment_id", "kind", "name",
                     description=t.description.re_replace(r" Stands out by: .*$", "")
                     .re_replace(r"^Behaviour cluster: .*$", "Behaviour cluster."),
                     # "offer — why; also: offer — why." -> "offer; also: offer."
                     offer=t.offer.re_replace(r" — [^;]*?(; also: |\.$)", r"\1"))
    out = texts.inner_join(totals, ["segment_id", "kind"])
    return out.mutate(customers=out.customers.cast("int64"), profile=ibis.null("string")).select(*t.columns)
