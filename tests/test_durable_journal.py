"""The durable pieces alone: the approval layer, the tape the worker reports, the fingerprint
that refuses a changed program, and what a call's identity is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codemode import ToolCall, create_tool
from codemode._bridge import Approval, CallSite
from codemode.durable import Tape, fingerprint, fingerprint_changes, input_hash
from codemode.languages import Program
from codemode.sandboxes._base import ToolReply

REFUND = create_tool(
    id="refund",
    description="Refund.",
    input_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
    execute=lambda input: input,
    require_approval=lambda input: input["amount"] > 100,
)
RAN = ToolReply(True, value="ran")


async def through(approval: Approval, amount: int) -> ToolReply | None:
    site = CallSite("refund", None, REFUND)
    site.input = {"amount": amount}

    async def run(site: CallSite) -> ToolReply | None:
        return RAN

    return await approval(site, run)


@pytest.mark.parametrize(
    ("answer", "can_defer", "expected"),
    [
        (True, False, RAN),
        (None, True, None),  # deferred: the call waits
        (None, False, "Tool refund requires approval and was not approved"),
        (False, True, "Tool refund requires approval and was not approved"),
        ("over budget", True, "Tool refund requires approval and was not approved: over budget"),
        ("  ", True, "Tool refund requires approval and was not approved"),
        (1, True, "Tool refund requires approval and was not approved"),
    ],
)
async def test_the_approval_layer_runs_denies_or_defers(
    answer: Any, can_defer: bool, expected: Any
) -> None:
    asked: list[ToolCall] = []

    async def approve(call: ToolCall) -> Any:
        asked.append(call)
        return answer

    reply = await through(Approval(approve, {"user": "ada"}, can_defer=can_defer), 500)
    if isinstance(expected, str):
        assert reply == ToolReply(False, error_message=expected, error_name="ApprovalDeniedError")
    else:
        assert reply == expected
    assert [(c.tool_id, c.input, c.request_context) for c in asked] == [
        ("refund", {"amount": 500}, {"user": "ada"})
    ]


async def test_the_approval_layer_asks_only_when_the_predicate_says_so() -> None:
    def approve(call: ToolCall) -> bool:
        raise AssertionError("not asked")

    assert await through(Approval(approve, {}, can_defer=True), 5) == RAN


async def test_an_approve_callback_that_raises_fails_the_call() -> None:
    def approve(call: ToolCall) -> bool:
        raise PermissionError("approval service down")

    reply = await through(Approval(approve, {}, can_defer=True), 500)
    assert reply == ToolReply(
        False, error_message="approval service down", error_name="PermissionError"
    )


def test_the_tape_merges_chunks_in_order_whatever_order_they_arrive_in() -> None:
    tape = Tape()
    tape.add({"e0": 0, "e": ["s1", "t1"], "v0": 0, "v": [["d", 5], ["r", [1, 2, 3, 4]]]})
    tape.add({"e0": 4, "e": ["a1"]})  # ahead of a gap: kept for later
    tape.add({"e0": 1, "e": ["t1", "s2", "s3"]})  # overlaps what is known
    assert tape.events == ["s1", "t1", "s2", "s3", "a1"]
    assert tape.values == [["d", 5], ["r", [1, 2, 3, 4]]]
    chunk = tape.unsaved()
    assert chunk is not None and json.loads(chunk) == {
        "e0": 0,
        "e": ["s1", "t1", "s2", "s3", "a1"],
        "v0": 0,
        "v": [["d", 5], ["r", [1, 2, 3, 4]]],
    }
    assert tape.unsaved() is None
    reloaded = Tape([chunk])
    assert reloaded.replay.events == ("s1", "t1", "s2", "s3", "a1")
    assert reloaded.replay.values == (["d", 5], ["r", [1, 2, 3, 4]])
    assert reloaded.unsaved() is None  # what was loaded is saved already


@pytest.mark.parametrize(
    "chunk",
    [
        {"e0": 0, "e": ["x1"]},
        {"e0": 0, "e": ["s1", 3]},
        {"e0": -1, "e": ["s1"]},
        {"e0": True, "e": ["s1"]},
        {"v0": 0, "v": [["d"]]},
        {"v0": 0, "v": [[1, 2]]},
        "not a chunk",
        None,
    ],
)
def test_a_malformed_chunk_is_dropped_not_stored(chunk: Any) -> None:
    tape = Tape()
    tape.add(chunk)
    assert (tape.events, tape.values, tape.unsaved()) == ([], [], None)


def test_a_call_is_its_function_and_input_text() -> None:
    assert input_hash("refund", '{"a":1}') == input_hash("refund", '{"a":1}')
    assert input_hash("refund", '{"a":1}') != input_hash("refund", '{"a":2}')
    assert input_hash("refund", None) != input_hash("charge", None)
    assert input_hash("a", "b\nc") != input_hash("a\nb", "c")


def test_the_fingerprint_names_what_changed() -> None:
    other = create_tool(id="note", description="Note.", input_schema={"type": "object"}, execute=id)
    program = Program("export default async () => 1", 0)
    before = fingerprint("execute_typescript", program, {"refund": REFUND, "note": other})
    assert fingerprint_changes(before, before) == []
    changed_schema = create_tool(
        id="refund", description="x", input_schema={"type": "object"}, execute=id
    )
    after = fingerprint(
        "ops_code", Program("export default async () => 2", 0), {"refund": changed_schema}
    )
    assert fingerprint_changes(before, after) == [
        "it belongs to code tool 'execute_typescript', not 'ops_code'",
        "its program is not the one that ran (the code, or how it is prepared)",
        "tool external_note was removed",
        "tool external_refund changed (its id or schemas)",
    ]
    # A description is prose for the model: changing it does not change what a call means.
    reworded = create_tool(
        id="refund",
        description="Refund an order.",
        input_schema=REFUND.input_schema,
        execute=id,
    )
    assert fingerprint("execute_typescript", program, {"refund": reworded}) == fingerprint(
        "execute_typescript", program, {"refund": REFUND}
    )
    assert fingerprint_changes("{not json", before) == ["the stored fingerprint is unreadable"]
