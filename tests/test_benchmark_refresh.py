"""The refresh run's verdicts (benchmarks/answers.py) and its second dataset (benchmarks/refresh.py).

Pure functions on hand-made Dash responses: an answer is the old data's, the new data's, a mix
of outputs from both, or neither; nothing is ignored.
"""
from __future__ import annotations

import json

from benchmarks import answers
from benchmarks.refresh import derive_raw


def _answer(kpi, funnel, chips="Type 0", side=None) -> str:
    body = {"multi": True, "response": {"carts-kpis": {"children": kpi}, "carts-funnel": {"figure": funnel},
                                        "carts-chips": {"children": chips}}}
    if side is not None:
        body["sideUpdate"] = side
    return json.dumps(body)


OLD = _answer("4,158 sessions", {"data": [{"y": [4158, 900]}]})
NEW = _answer("3,740 sessions", {"data": [{"y": [3740, 810]}]})


def test_old_and_new_answers_are_recognised_byte_for_byte_or_as_json():
    assert answers.classify(OLD, OLD, NEW) == answers.OLD
    assert answers.classify(NEW.encode(), OLD, NEW) == answers.NEW
    reordered = json.dumps(json.loads(NEW), indent=2)  # same JSON, other serialisation
    assert answers.classify(reordered, OLD, NEW) == answers.NEW
    assert answers.classify(OLD, OLD, OLD) == answers.SAME


def test_outputs_from_both_versions_are_a_mixed_answer():
    half = _answer("4,158 sessions", {"data": [{"y": [3740, 810]}]})  # old KPIs, new funnel
    assert answers.classify(half, OLD, NEW) == answers.MIXED
    detail = answers.differing_outputs(half, OLD, NEW)
    assert detail == {"response:carts-kpis.children": {"verdict": answers.OLD},
                      "response:carts-funnel.figure": {"verdict": answers.NEW}}


def test_values_of_both_versions_inside_one_output_are_mixed_too():
    inside = _answer("4,158 sessions", {"data": [{"y": [4158, 810]}]})  # one figure, half of each
    assert answers.classify(inside, OLD, NEW) == answers.MIXED
    leaves = answers.differing_outputs(inside, OLD, NEW)["response:carts-funnel.figure"]["leaves"]
    assert leaves == [{"at": "/data/0/y/0", "got": 4158, "old": 4158, "new": 3740, "is": answers.OLD},
                      {"at": "/data/0/y/1", "got": 810, "old": 900, "new": 810, "is": answers.NEW}]


def test_anything_else_is_neither_and_says_which_values():
    computed = _answer("4,158 sessions", {"data": [{"y": [4158, 999]}]})  # a value no version has
    assert answers.classify(computed, OLD, NEW) == answers.NEITHER
    leaves = answers.differing_outputs(computed, OLD, NEW)["response:carts-funnel.figure"]["leaves"]
    assert leaves[0] == {"at": "/data/0/y/1", "got": 999, "old": 900, "new": 810, "is": answers.NEITHER}
    truncated = _answer("4,158 sessions", {"data": [{"y": [4158]}]})
    assert answers.classify(truncated, OLD, NEW) == answers.NEITHER
    assert answers.classify(_answer("4,158 sessions", {"data": [{"y": [4158, 900]}]}, chips="Type 1"),
                            OLD, NEW) == answers.NEITHER
    error = _answer("4,158 sessions", {"data": [{"y": [4158, 900]}]}, side={"app-error": {"children": "x"}})
    assert answers.classify(error, OLD, NEW) == answers.NEITHER   # an extra output
    for broken in ("", "not json", "[]", '{"multi": true}', '{"response": []}'):
        assert answers.classify(broken, OLD, NEW) == answers.NEITHER


def test_the_second_dataset_drops_every_tenth_row_of_sessions_and_customers(tmp_path):
    source = tmp_path / "a"
    (source / "carts").mkdir(parents=True)
    (source / "customers").mkdir()
    rows = "".join(f"s{i},1\r\n" for i in range(30))
    (source / "carts" / "part.CSV").write_text("id,x\r\n" + rows)
    (source / "customers" / "market_file.csv").write_text("id,y\n" + "".join(f"{i},2\n" for i in range(20)))
    (source / "customers" / "money.csv").write_text("id;p\n1;0,5\n")
    (source / "README.md").write_text("not data")
    digest = derive_raw(source, tmp_path / "b")
    carts = (tmp_path / "b" / "carts" / "part.CSV").read_text().splitlines()
    assert carts[0] == "id,x" and len(carts) == 1 + 27 and "s3,1" not in carts and "s13,1" not in carts
    assert (tmp_path / "b" / "carts" / "part.CSV").read_bytes().endswith(b"s29,1\r\n")  # bytes kept as they were
    assert len((tmp_path / "b" / "customers" / "market_file.csv").read_text().splitlines()) == 1 + 18
    assert (tmp_path / "b" / "customers" / "money.csv").read_text() == "id;p\n1;0,5\n"
    assert not (tmp_path / "b" / "README.md").exists()
    assert derive_raw(source, tmp_path / "b2") == digest  # deterministic: B is rebuilt only when A changes
