"""Reading a JSON-lines file gives what Python's json module gives, line by line, whatever the
line holds (the reader parses with orjson and falls back to json where orjson refuses)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.core.io import read_jsonl

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
garbage = st.sampled_from(['{"a": ', "NaN", "[1, 2", '"\\ud800"', "{'a': 1}", "1e999", "tru"])


def _expected(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return None


def _same(a, b) -> bool:
    # NaN is not equal to itself: compare the JSON each side writes back.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(values.map(json.dumps), garbage), min_size=1, max_size=8))
def test_each_line_reads_as_json_reads_it(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = list(read_jsonl(path))
    assert len(read) == len([line for line in lines if line.strip()])
    expected = [_expected(line) for line in lines if line.strip()]
    assert all(_same(a, b) for a, b in zip(read, expected, strict=True))
