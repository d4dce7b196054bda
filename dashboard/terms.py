"""The data's own words, translatable: column labels, category and tier values, segment names,
offers, the plain-language reasons for a prediction and the ETL's rejection rules.

Their English text is written by the ETL and training code (``etl.schema.LABELS``,
``etl.train.segments``, ``etl.train.explain``) and some of it is stored in the warehouse. The
same English is repeated here inside ``N_()`` so that Babel's extraction finds each msgid;
``tests/test_reports.py`` fails when the two drift apart (a new offer or label without a
translation). Functions take the reader's gettext function ``_`` (:func:`dashboard.i18n.translator`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from dashboard.i18n import N_, format_date, format_number

Gettext = Callable[[str], str]

LABELS = {
    "session_id": N_("Session"),
    "product_details_viewed": N_("Product details viewed"),
    "session_activity_count": N_("Session activity (actions)"),
    "items_added": N_("Items added to cart"),
    "items_removed": N_("Items removed from cart"),
    "cart_views": N_("Cart views"),
    "checkout_initiated": N_("Checkouts initiated"),
    "checkout_confirmed": N_("Checkouts confirmed"),
    "cart_item_views": N_("Cart item views"),
    "customer_logins": N_("Customer logins"),
    "pages_viewed": N_("Pages viewed"),
    "customer_segment": N_("Customer type"),
    "abandoned": N_("Cart abandoned"),
    "customer_id": N_("Customer"),
    "activity_declined": N_("Activity declined"),
    "service_tier": N_("Service tier"),
    "marketing_consent": N_("Marketing consent"),
    "marketing_6m": N_("Marketing contacts / month (6 m)"),
    "marketing_this_month": N_("Marketing contacts this month"),
    "tenure_days": N_("Days since registration"),
    "promo_share": N_("Share of promo purchases"),
    "top_category": N_("Top category"),
    "categories_per_visit": N_("Categories viewed per visit"),
    "unpaid_items_quarter": N_("Unpaid items in cart (quarter)"),
    "service_errors": N_("Service errors"),
    "pages_per_visit": N_("Pages per visit"),
    "revenue_2m_ago": N_("Revenue two months ago"),
    "revenue_last_month": N_("Revenue last month"),
    "revenue_this_month": N_("Revenue this month"),
    "minutes_last_month": N_("Minutes on site last month"),
    "minutes_this_month": N_("Minutes on site this month"),
    "profit": N_("Average monthly profit"),
    "p_abandon": N_("P(abandon)"),
    "p_decline": N_("P(decline)"),
    "expected_profit_at_risk": N_("Profit at risk"),
}

CATEGORIES = {
    "Kids' goods": N_("Kids' goods"),
    "Home textiles": N_("Home textiles"),
    "Cosmetics and accessories": N_("Cosmetics and accessories"),
    "Beauty and health devices": N_("Beauty and health devices"),
    "Small appliances and electronics": N_("Small appliances and electronics"),
    "Kitchenware": N_("Kitchenware"),
}
SERVICE_TIERS = {"premium": N_("premium"), "standard": N_("standard")}

# etl.train.segments.RULE_SEGMENTS names, by segment id
RULE_SEGMENT_NAMES = {
    "promo_risk_high_profit": N_("Promo-heavy · high risk · high profit"),
    "promo_risk_low_profit": N_("Promo-heavy · high risk · low profit"),
    "risk_high_profit": N_("High risk · high profit"),
    "risk_low_profit": N_("High risk · low profit"),
    "other": N_("Other · low risk"),
}

# etl.train.segments.OFFERS values, LOW_RISK_OFFER and FALLBACK_OFFER
OFFERS = (
    N_("Reminder of the unpaid items left in the cart, with a time-limited promo code on them"),
    N_("Personal promo codes in their favourite category, announced before the next sale"),
    N_("Cross-category recommendations next to their favourite category"),
    N_("Personalised home page and 'you may also like' blocks to deepen visits"),
    N_("Re-engagement e-mail with new arrivals in their favourite category"),
    N_("Add them to the regular campaign calendar: they hear from the store less than most"),
    N_("Add them to this month's campaigns: they were barely contacted"),
    N_("Apology with a service credit, and their errors routed to the site team"),
    N_("Welcome-back bundle in their favourite category to rebuild the basket"),
    N_("Loyalty reward for long-standing customers (points or free delivery)"),
    N_("No retention offer: regular newsletter only"),
    N_("Personal offer in their favourite category"),
)

# etl.train.explain.PHRASES with a named placeholder: feature -> (above typical, below typical)
PHRASES = {
    "unpaid_items_quarter": (N_("many unpaid items ({value})"), N_("few unpaid items ({value})")),
    "promo_share": (N_("promo share {value}"), N_("promo share {value}")),
    "pages_per_visit": (N_("many pages per visit ({value})"), N_("few pages per visit ({value})")),
    "categories_per_visit": (N_("many categories per visit ({value})"), N_("few categories per visit ({value})")),
    "minutes_last_month": (N_("long time on site last month ({value} min)"),
                           N_("little time on site last month ({value} min)")),
    "minutes_this_month": (N_("long time on site this month ({value} min)"),
                           N_("little time on site this month ({value} min)")),
    "marketing_6m": (N_("many marketing contacts ({value}/month)"), N_("few marketing contacts ({value}/month)")),
    "marketing_this_month": (N_("many marketing contacts this month ({value})"),
                             N_("few marketing contacts this month ({value})")),
    "service_errors": (N_("many service errors ({value})"), N_("few service errors ({value})")),
    "tenure_days": (N_("registered long ago ({value} days)"), N_("registered recently ({value} days)")),
    "revenue_2m_ago": (N_("high revenue two months ago ({value})"), N_("low revenue two months ago ({value})")),
    "revenue_last_month": (N_("high revenue last month ({value})"), N_("low revenue last month ({value})")),
    "revenue_this_month": (N_("high revenue this month ({value})"), N_("low revenue this month ({value})")),
}
# a yes/no feature: (when yes, when no)
BOOL_PHRASES = {"marketing_consent": (N_("marketing consent"), N_("no marketing consent"))}
NOTHING_STANDS_OUT = N_("nothing raises the risk above a typical customer")

# rule names of rejected rows (etl/validate.py, etl/csv_lines.py, etl/carts.py, etl/customers.py)
RULES = {
    "csv structure": N_("Line is not a valid CSV row"),
    "encoding": N_("Line in another text encoding"),
    "blank row": N_("Blank row"),
    "required value": N_("Required value missing"),
    "decimal mark": N_("Number with the other decimal mark"),
    "allowed labels": N_("Label not among the allowed ones"),
    "text": N_("Unreadable text"),
    "number": N_("Not a number"),
    "range": N_("Value out of range"),
    "unique id": N_("Repeated id"),
    "known customer": N_("Unknown customer id"),
    "revenue present": N_("Revenue missing for a month"),
    "minutes present": N_("Minutes on site missing for a month"),
    "profit present": N_("Profit missing"),
    "active three months": N_("No revenue in one of the three months"),
    "revenue outlier": N_("Revenue over 10× the month's median"),
    "purchase without items": N_("Purchase with no items in the cart"),
}
SUBJECTS = {"carts": N_("Cart sessions"), "customers": N_("Regular customers")}
# etl.train.search candidates, by name
ESTIMATORS = {
    "logistic_regression": N_("Logistic regression"),
    "knn": N_("K nearest neighbours"),
    "decision_tree": N_("Decision tree"),
    "svc": N_("Support vector machine (RBF)"),
    "gradient_boosting": N_("Gradient boosting (histogram)"),
    "random_forest": N_("Random forest"),
}


def label(column: str, _: Gettext) -> str:
    return _(LABELS[column]) if column in LABELS else column.replace("_", " ").capitalize()


def category(value: str, _: Gettext) -> str:
    return _(CATEGORIES[value]) if value in CATEGORIES else str(value)


def tier(value: str, _: Gettext) -> str:
    return _(SERVICE_TIERS[value]) if value in SERVICE_TIERS else str(value)


def customer_type(value: int, _: Gettext) -> str:
    return _("Type {number}").format(number=value)


def rule(name: str, _: Gettext) -> str:
    return _(RULES[name]) if name in RULES else name


YES_NO = {True: N_("yes"), False: N_("no")}


def value(column: str, raw, _: Gettext) -> str:
    """A stored value of a scope column as the reader reads it."""
    if column == "service_tier":
        return tier(raw, _)
    if column == "top_category":
        return category(raw, _)
    if column == "customer_segment":
        return customer_type(int(raw), _)
    if isinstance(raw, bool):
        return _(YES_NO[raw])
    return str(raw)


def scope_label(columns, _: Gettext) -> str:
    """A row scope (``Scope.columns``) in words: ``Тип сервиса: премиум; Согласие на рассылку: да``."""
    return "; ".join(f"{label(column, _)}: {', '.join(value(column, v, _) for v in values)}"
                     for column, values in columns)


def estimator(candidate: str | None, fallback: str | None, _: Gettext) -> str:
    return _(ESTIMATORS[candidate]) if candidate in ESTIMATORS else (fallback or "–")


def subject(name: str, _: Gettext) -> str:
    return _(SUBJECTS[name]) if name in SUBJECTS else name


_LOWER_LABELS = {text.lower(): column for column, text in LABELS.items()}
_CLUSTER = re.compile(r"^Cluster (\d+): (.*)$")


def segment_name(segment_id: str, kind: str, name: str, _: Gettext) -> str:
    """A rule segment by its id; a cluster ("Cluster 2: high share of promo purchases, low
    pages per visit", written by training) rebuilt from its parts in the reader's language."""
    if kind == "rule" and segment_id in RULE_SEGMENT_NAMES:
        return _(RULE_SEGMENT_NAMES[segment_id])
    found = _CLUSTER.match(name or "")
    if not found:
        return name
    traits = []
    for part in found.group(2).split(", "):
        level, _space, feature = part.partition(" ")
        column = _LOWER_LABELS.get(feature)
        if level not in ("high", "low") or column is None:
            return name
        template = _("high {feature}") if level == "high" else _("low {feature}")
        traits.append(template.format(feature=label(column, _).lower()))
    return _("Cluster {number}").format(number=found.group(1)) + ": " + ", ".join(traits)


def offers(text: str, _: Gettext) -> list[str]:
    """The offers of a segment's ``offer`` text ("offer — why; also: offer — why."), each
    translated; the "why" (model log-odds) is for analysts on the Segments page."""
    known = {o.lower(): o for o in OFFERS}
    out = []
    for part in (text or "").rstrip(".").split("; also: "):
        headline = part.split(" — ")[0].strip().rstrip(".")
        if headline:
            out.append(_(known[headline.lower()]) if headline.lower() in known else headline)
    return out


def reason(feature: str, kind: str, value: str, baseline, _: Gettext, lang: str) -> str:
    """One plain-language reason, as ``etl.train.explain.phrase`` words it, in the reader's
    language. ``value`` is the stored text of the customer's value, ``kind`` the card's."""
    if kind == "bool":
        yes = str(value).strip().lower() in ("true", "1", "yes")
        if feature in BOOL_PHRASES:
            return _(BOOL_PHRASES[feature][0 if yes else 1])
        return (_("{feature}: yes") if yes else _("{feature}: no")).format(feature=label(feature, _).lower())
    if kind == "category":
        shown = category(value, _) if feature == "top_category" else tier(value, _)
        return _("{feature}: {value}").format(feature=label(feature, _).lower(), value=shown)
    number = float(value)
    shown = format_number(number, lang, None if number.is_integer() else 2)
    above, below = PHRASES.get(feature, (N_("high {feature} ({value})"), N_("low {feature} ({value})")))
    template = _(above if baseline is None or number > float(baseline) else below)
    return template.format(value=shown, feature=label(feature, _).lower())


def shown(column: str, raw, _: Gettext, lang: str) -> str:
    """A feature's value as the reader reads it (what-if, contributions, advice): numbers in the
    locale's format, yes/no, categories and tiers translated. ``raw`` may be the stored text."""
    raw = raw.item() if hasattr(raw, "item") else raw      # numpy scalars
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in ("true", "false"):
            raw = word == "true"
        elif column not in ("service_tier", "top_category"):
            try:
                raw = float(raw)
            except ValueError:
                return raw
    if isinstance(raw, bool) or column in ("service_tier", "top_category", "customer_segment"):
        return value(column, raw, _)
    if isinstance(raw, int | float):
        return format_number(raw, lang, None if float(raw).is_integer() else 2)
    return str(raw)


# etl.train.segments.RULE_SEGMENTS descriptions (before " Stands out by: …")
RULE_DESCRIPTIONS = {
    "promo_risk_high_profit": N_("The seed's segment worth keeping: promo share >= {promo}, P(decline) >= {risk}, "
                                 "monthly profit >= {profit} (the median)."),
    "promo_risk_low_profit": N_("Promo share >= {promo}, P(decline) >= {risk}, profit below {profit}: only offers "
                                "cheaper than what they bring."),
    "risk_high_profit": N_("Not promo-driven, P(decline) >= {risk}, profit >= {profit}."),
    "risk_low_profit": N_("Not promo-driven, P(decline) >= {risk}, profit below {profit}."),
    "other": N_("P(decline) below {risk}: no retention offer needed."),
}
_NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"
_TRAIT = re.compile(rf"^(high|low) (.+) \({_NUMBER} vs {_NUMBER}\)$")


def _traits(text: str, _: Gettext, lang: str) -> str | None:
    """"high promo share (0.61 vs 0.32); low pages per visit (…)" in the reader's language."""
    out = []
    for part in text.split("; "):
        found = _TRAIT.match(part)
        column = _LOWER_LABELS.get(found.group(2)) if found else None
        if column is None:
            return None
        template = _("high {feature} ({segment} vs {overall})") if found.group(1) == "high" else \
            _("low {feature} ({segment} vs {overall})")
        out.append(template.format(feature=label(column, _).lower(), segment=format_number(float(found.group(3)), lang),
                                   overall=format_number(float(found.group(4)), lang)))
    return "; ".join(out)


def segment_description(segment_id: str, kind: str, text: str, _: Gettext, lang: str) -> str:
    """A segment's description (written in English by training) rebuilt in the reader's
    language from its parts; the stored text when it does not have the known shape."""
    text = text or ""
    if kind == "rule" and segment_id in RULE_DESCRIPTIONS:
        definition, _sep, rest = text.partition(" Stands out by: ")
        pattern = re.escape(RULE_DESCRIPTIONS[segment_id])
        for name in ("promo", "risk", "profit"):
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{_NUMBER[1:-1]})")
        found = re.fullmatch(pattern, definition)
        traits = _traits(rest.removesuffix("."), _, lang) if rest else None
        if not found or traits is None:
            return text
        numbers = {k: format_number(float(v), lang) for k, v in found.groupdict().items()}
        return (_(RULE_DESCRIPTIONS[segment_id]).format(**numbers) + " "
                + _("Stands out by: {traits}.").format(traits=traits))
    if text.startswith("Behaviour cluster: "):
        traits = _traits(text.removeprefix("Behaviour cluster: ").removesuffix("."), _, lang)
        if traits is not None:
            return _("Behaviour cluster: {traits}.").format(traits=traits)
    return text


_WHY = re.compile(rf"^driver: (.+) \((above|below) average, \+{_NUMBER} log-odds towards decline\)$")
_LOW_WHY = re.compile(rf"^mean P\(decline\) {_NUMBER} is below the decision threshold {_NUMBER}$")


def offer_reasons(text: str, _: Gettext, lang: str) -> list[tuple[str, str | None]]:
    """The offers of a segment's ``offer`` text with why each was chosen (the driver and its
    log-odds, for analysts), both in the reader's language; a why of unknown shape is left out."""
    out = []
    for part, headline in zip((text or "").rstrip(".").split("; also: "), offers(text, _)):
        why = part.partition(" — ")[2]
        driver, low = _WHY.match(why), _LOW_WHY.match(why)
        column = _LOWER_LABELS.get(driver.group(1)) if driver else None
        if column is not None:
            template = (_("driver: {feature} (above average, +{log_odds} log-odds towards decline)")
                        if driver.group(2) == "above" else
                        _("driver: {feature} (below average, +{log_odds} log-odds towards decline)"))
            why = template.format(feature=label(column, _).lower(), log_odds=format_number(float(driver.group(3)), lang, 2))
        elif low:
            why = _("mean P(decline) {p} is below the decision threshold {threshold}").format(
                p=format_number(float(low.group(1)), lang, 2), threshold=format_number(float(low.group(2)), lang, 2))
        elif why == "no single behaviour stands out among its drivers of decline":
            why = _("no single behaviour stands out among its drivers of decline")
        else:
            why = None
        out.append((headline, why))
    return out


def moment(text: str | None, lang: str) -> str:
    """A stored ISO time (a model card's ``trained_at``) as the reader writes a date and time."""
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return "–"
    return f"{format_date(parsed, lang)}, {parsed:%H:%M}"
