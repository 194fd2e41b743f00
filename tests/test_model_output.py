"""What reaches the model is bounded, structurally: valid JSON of the same shape, with markers
where it was cut, and a note saying how to get less. The host keeps the full value."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from codemode import CodeModeError, CodeModeToolResult
from codemode._model_output import (
    bound_json,
    bound_result_payload,
    bound_text,
    json_size,
)

NOTE = (
    'The output was cut to fit {:,} characters; markers such as "… 9,950 more items" show '
    "where. Return less: filter, aggregate or paginate in the program and return only what the "
    "answer needs."
)


def test_a_value_that_fits_is_left_alone() -> None:
    value = {"rows": [1, 2, 3], "name": "x" * 100}
    assert bound_json(value, 1000) == (value, False)


def test_a_long_array_keeps_its_first_items_and_says_how_many_were_left_out() -> None:
    bounded, cut = bound_json(list(range(10_000)), 2_000)
    assert cut
    assert bounded[:3] == [0, 1, 2]
    kept = len(bounded) - 1
    assert bounded[-1] == f"… {10_000 - kept:,} more items"
    assert all(isinstance(v, int) for v in bounded[:-1])
    assert json_size(bounded) <= 2_000


def test_long_strings_and_wide_objects_are_cut_with_markers() -> None:
    value = {
        "text": "a" * 50_000,
        "ids": {f"k{i}": i for i in range(5_000)},
    }
    bounded, cut = bound_json(value, 3_000)
    assert cut and json_size(bounded) <= 3_000
    assert set(bounded) == {"text", "ids"}  # the same shape
    head, marker = bounded["text"].split("…")
    assert set(head) == {"a"}
    assert marker == f" ({50_000 - len(head):,} more characters)"
    ids = bounded["ids"]
    kept = len(ids) - 1
    assert list(ids)[:2] == ["k0", "k1"]
    assert ids["…"] == f"{5_000 - kept:,} more keys"


def test_records_keep_their_fields_when_rows_are_dropped() -> None:
    rows = [{"id": i, "name": f"user {i}", "email": f"u{i}@example.com"} for i in range(2_000)]
    bounded, _ = bound_json({"users": rows, "total": 2_000}, 4_000)
    assert bounded["total"] == 2_000
    assert bounded["users"][0] == {"id": 0, "name": "user 0", "email": "u0@example.com"}
    assert bounded["users"][-1].endswith(" more items")
    assert json_size(bounded) <= 4_000


def test_deep_nesting_is_summarised() -> None:
    value: Any = "leaf"
    for _ in range(200):
        value = [value, "x" * 50]
    bounded, cut = bound_json(value, 1_000)
    assert cut and json_size(bounded) <= 1_000
    text = json.dumps(bounded, ensure_ascii=False)
    assert "… (array of 2 items)" in text


@settings(max_examples=150, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=30)
            | st.dictionaries(st.text(max_size=10), children, max_size=30)
        ),
        max_leaves=400,
    ),
    limit=st.integers(min_value=50, max_value=3_000),
)
def test_any_json_value_comes_out_as_json_within_the_limit(value: Any, limit: int) -> None:
    bounded, cut = bound_json(value, limit)
    text = json.dumps(bounded, ensure_ascii=False)
    assert json.loads(text) == bounded
    if not cut:
        assert bounded == value
    assert len(text) <= limit or not isinstance(value, (list, dict, str))


def test_logs_keep_their_first_and_last_lines() -> None:
    payload = {"success": True, "logs": [f"line {i}" for i in range(5_000)]}
    bounded = bound_result_payload(payload, 2_000)
    logs = bounded["logs"]
    assert logs[0] == "line 0" and logs[-1] == "line 4999"
    middle = [line for line in logs if line.startswith("…")]
    assert len(middle) == 1 and middle[0].endswith(" more lines")
    assert bounded["note"] == NOTE.format(2_000)
    assert json_size(bounded) <= 2_000


def test_an_error_message_keeps_room_for_itself() -> None:
    payload = {
        "success": False,
        "logs": ["x" * 100] * 500,
        "error": {"message": "Boom: " + "detail " * 3_000, "name": "Error", "line": 3},
    }
    bounded = bound_result_payload(payload, 4_000)
    error = bounded["error"]
    assert (error["name"], error["line"]) == ("Error", 3)
    assert error["message"].startswith("Boom: detail")
    assert error["message"].endswith(" more characters)")
    assert json_size(bounded) <= 4_000


def test_to_json_is_bounded_and_the_result_keeps_the_full_value() -> None:
    result = CodeModeToolResult(success=True, result=list(range(20_000)), logs=["done"])
    assert len(result.result) == 20_000
    shown = result.to_json()
    assert json_size(shown) <= 20_000
    assert shown["result"][-1].endswith(" more items")
    assert shown["logs"] == ["done"]
    assert shown["note"] == NOTE.format(20_000)
    assert result.to_json(max_chars=None)["result"] == list(range(20_000))
    assert json_size(result.to_json(max_chars=5_000)) <= 5_000
    # a small result is the spec's shape, untouched
    small = CodeModeToolResult(success=False, error=CodeModeError(message="m", name="E"))
    assert small.to_json() == {"success": False, "logs": [], "error": {"message": "m", "name": "E"}}


def test_text_is_cut_at_a_line_with_advice() -> None:
    text = "\n".join(f"declare function f{i}(): void;" for i in range(1_000))
    bounded = bound_text(text, 1_000, advice="describe fewer functions at a time")
    assert len(bounded) <= 1_000
    body, last = bounded.rsplit("\n", 1)
    assert text.startswith(body)
    assert last == (
        f"… ({len(text) - len(body):,} more characters: describe fewer functions at a time)"
    )
