"""What the load clients received during a refresh, counted: old, new, mixed, neither, failed.

The locust users (benchmarks/locustfile.py, ``LOADTEST_ANSWERS``) keep every distinct response
body per payload with its count and the first and last time it was sent and received. Here each
body is classified against that payload's old and new answer (:mod:`benchmarks.answers`) —
shared by the refresh run (benchmarks/refresh.py) and the publish storm (benchmarks/storm.py).
"""
from __future__ import annotations

from benchmarks import answers

FAILED = "failed"      # an HTTP error, not a Dash answer, or the app's "could not answer" message
UNKEPT = "not kept"    # a body beyond the 20 distinct ones kept per payload: cannot be checked
BAD = (answers.MIXED, answers.NEITHER, UNKEPT)
ORDER = (answers.OLD, answers.NEW, answers.SAME, answers.MIXED, answers.NEITHER, FAILED, UNKEPT)


def wrong(counts: dict) -> int:
    """Answers that are neither the old data's nor the new data's (failures counted apart)."""
    return sum(counts.get(v, 0) for v in BAD)


def classify_seen(seen: dict, payloads: list[dict], old: list[str], new: list[str], started_at: float) -> dict:
    """Every distinct body locust kept, per payload, against that payload's old and new answer;
    counts per payload name and verdict, timings, and the bad ones in detail."""
    by_name: dict[str, dict] = {}
    bad: list[dict] = []
    for index, bodies in seen.items():
        i = int(index)
        name = payloads[i]["name"]
        for entry in bodies.values():
            if entry["problem"]:
                verdict = FAILED
            elif entry["body"] is None:
                verdict = UNKEPT
            else:
                verdict = answers.classify(entry["body"], old[i], new[i])
            slot = by_name.setdefault(name, {}).setdefault(verdict, {"count": 0, "first_sent": 1e18, "last_sent": 0,
                                                                     "first_received": 1e18, "last_received": 0})
            slot["count"] += entry["count"]
            for key, pick in (("first_sent", min), ("last_sent", max), ("first_received", min), ("last_received", max)):
                slot[key] = pick(slot[key], entry[key])
            if verdict in (*BAD, FAILED):
                bad.append({"payload": i, "name": name, "page": payloads[i].get("page"), "verdict": verdict,
                            "count": entry["count"], "problem": entry["problem"],
                            "sent_s": [round(entry["first_sent"] - started_at, 2), round(entry["last_sent"] - started_at, 2)],
                            "outputs": answers.differing_outputs(entry["body"] or "", old[i], new[i])})
    out: dict = {"by_name": {}, "totals": {}}
    for name, verdicts in sorted(by_name.items()):
        row: dict = {}
        for verdict, slot in verdicts.items():
            row[verdict] = slot["count"]
            out["totals"][verdict] = out["totals"].get(verdict, 0) + slot["count"]
            if verdict in (*BAD, FAILED):
                row[f"{verdict}_sent_s"] = [round(slot["first_sent"] - started_at, 2),
                                            round(slot["last_sent"] - started_at, 2)]
        if answers.OLD in verdicts:   # an old answer to a request sent after the publish would be stale
            row["last_old_sent_s"] = round(verdicts[answers.OLD]["last_sent"] - started_at, 2)
        if answers.NEW in verdicts:   # a new answer received before the publish would be impossible
            row["first_new_received_s"] = round(verdicts[answers.NEW]["first_received"] - started_at, 2)
        out["by_name"][name] = row
    out.update({k: out["totals"].get(k, 0) for k in (answers.MIXED, answers.NEITHER, FAILED, UNKEPT)})
    out["bad"] = bad
    return out


def group_bad(bad: list[dict]) -> list[dict]:
    """The bad answers per payload, verdict and problem: how many, when sent, and each output's
    verdict (for a mixed answer: which outputs were old, which new)."""
    groups: dict[tuple, dict] = {}
    for b in bad:
        key = (b["name"], b["payload"], b["verdict"], b["problem"])
        g = groups.setdefault(key, {"name": b["name"], "payload": b["payload"], "page": b.get("page"),
                                    "verdict": b["verdict"], "problem": b["problem"], "count": 0, "bodies": 0,
                                    "sent_s": list(b["sent_s"]), "outputs": {}})
        g["count"] += b["count"]
        g["bodies"] += 1
        g["sent_s"] = [min(g["sent_s"][0], b["sent_s"][0]), max(g["sent_s"][1], b["sent_s"][1])]
        for output, detail in b["outputs"].items():
            g["outputs"].setdefault(output, set()).add(detail["verdict"])
    out = []
    for g in sorted(groups.values(), key=lambda g: (g["name"], g["payload"], g["verdict"])):
        g["outputs"] = {k: "/".join(sorted(v)) for k, v in g["outputs"].items()}
        if g["page"] is None:
            del g["page"]
        out.append(g)
    return out


def answer_lines(run: dict) -> list[str]:
    """Per payload name: answers per verdict; then the bad ones, grouped."""
    lines = []
    for name, v in run["answers"]["by_name"].items():
        counts = ", ".join(f"{v[k]} {k}" for k in ORDER if v.get(k))
        lines.append(f"  {name}: {counts}; last old answer sent at {v.get('last_old_sent_s', '–')} s, "
                     f"first new received at {v.get('first_new_received_s', '–')} s")
    for g in run.get("bad_answers", []):
        outputs = [k.split(":", 1)[-1] for k, v in g["outputs"].items()
                   if answers.MIXED in v.split("/") or answers.NEITHER in v.split("/")]
        lines.append(f"    {g['count']:>4} {g['verdict']:<8} {g['name']} #{g['payload']} {g.get('page', '')} "
                     f"(sent {g['sent_s'][0]}–{g['sent_s'][1]} s){': ' + g['problem'] if g['problem'] else ''}"
                     f"{'; not old/new: ' + ', '.join(outputs[:3]) if outputs and not g['problem'] else ''}")
    a = run["answers"]
    lines.append(f"  answers: {a[answers.MIXED]} mixed, {a[answers.NEITHER]} neither old nor new, {a[FAILED]} failed"
                 + (f", {a[UNKEPT]} not kept" if a[UNKEPT] else ""))
    return lines
