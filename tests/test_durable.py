"""Durable executions in one process with an SQLite store, for programs in each language (a
real Deno sandbox for TypeScript, a real Monty sandbox for Python): pausing on gated calls,
resuming with decisions, deterministic replay, divergence, refusals, expiry."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from _helpers import LANGUAGES, Lang, Matches, sandbox_for
from codemode import (
    CodeModeTool,
    DenoSandbox,
    Sandbox,
    Tool,
    ToolCall,
    ToolContext,
    create_code_mode,
    create_tool,
)
from codemode.durable import input_hash
from codemode.stores import SqliteStore

OBJECT = {"type": "object"}
ORDER = {
    "type": "object",
    "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["order"],
}


class Effects:
    """Tools whose every run is counted, by name."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, Any]] = []
        self.contexts: list[ToolContext] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.runs]

    def tool(
        self,
        id: str,
        result: Callable[[Any], Any] = lambda input: input,
        *,
        schema: Any = OBJECT,
        delay: float = 0.0,
        **options: Any,
    ) -> Tool:
        async def execute(input: Any, context: ToolContext) -> Any:
            self.runs.append((id, input))
            self.contexts.append(context)
            if delay:
                await asyncio.sleep(delay)
            return result(input)

        return create_tool(id=id, description=id, input_schema=schema, execute=execute, **options)


@pytest.fixture(params=LANGUAGES)
async def lang(request: pytest.FixtureRequest) -> AsyncIterator[Lang]:
    async with sandbox_for(request.param, prestart=1) as sandbox:
        yield Lang(request.param, sandbox)


@pytest.fixture
async def deno() -> AsyncIterator[Lang]:
    """For what only TypeScript programs can do (Date subclasses, crypto.subtle, postMessage)."""
    async with DenoSandbox(prestart=1) as sandbox:
        yield Lang("typescript", sandbox)


@pytest.fixture
async def monty() -> AsyncIterator[Lang]:
    """For what only Python programs can do (time.sleep, os.urandom, datetime)."""
    async with sandbox_for("python", prestart=1) as sandbox:
        yield Lang("python", sandbox)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "runs.db") as store:
        yield store


def defer(call: ToolCall) -> None:
    return None


def code_tool(
    lang: Lang, store: SqliteStore | None, tools: list[Tool], **options: Any
) -> CodeModeTool:
    options.setdefault("approve", defer)
    tool, _ = create_code_mode(tools=tools, sandbox=lang.sandbox, store=store, **options)
    return tool


def refund_tool(effects: Effects) -> Tool:
    return effects.tool(
        "refund",
        lambda input: {"refunded": input["order"]},
        schema=ORDER,
        require_approval=lambda input: input.get("amount", 0) > 100,
    )


# A denied call is ApprovalDeniedError in TypeScript and PermissionError in Python: each program
# reports it under the one name, so that the cases assert the same text.
TWO_REFUNDS = {
    "typescript": """
const total = await external_counter({});
const results = await Promise.all([
  external_refund({ order: "a", amount: 500 }).catch((e) => `${e.name}: ${e.message}`),
  external_refund({ order: "b", amount: 900 }).catch((e) => `${e.name}: ${e.message}`),
  external_refund({ order: "c", amount: 5 }),
]);
return { total, results };
""",
    "python": """
import asyncio
async def attempt(call):
    try:
        return await call
    except PermissionError as e:
        return f"ApprovalDeniedError: {e}"
total = await external_counter()
results = await asyncio.gather(
    attempt(external_refund(order="a", amount=500)),
    attempt(external_refund(order="b", amount=900)),
    external_refund(order="c", amount=5),
)
{"total": total, "results": results}
""",
}
# The lines of the two gated calls above.
TWO_REFUNDS_LINES = {"typescript": (4, 5), "python": (10, 11)}
ONE_REFUND = {
    "typescript": "return await external_refund({order: 'a', amount: 500})",
    "python": "await external_refund(order='a', amount=500)",
}


# -- 1-3: what gates a call, how approve answers, pausing -----------------------------------
async def test_a_pause_returns_every_waiting_call_together(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    tool = code_tool(lang, store, [effects.tool("counter", lambda _: 3), refund_tool(effects)])

    result = await tool.execute({"code": lang(TWO_REFUNDS)})

    a, b = lang(TWO_REFUNDS_LINES)
    assert (result.success, result.status) == (False, "paused")
    assert result.execution_id == Matches("[0-9a-f]{32}")
    assert [call.model_dump() for call in result.pending] == [
        {
            "call_id": Matches(r"2-[0-9a-f]{12}"),
            "tool_id": "refund",
            "input": {"order": "a", "amount": 500},
            "line": a,
            "kind": "approval",
        },
        {
            "call_id": Matches(r"3-[0-9a-f]{12}"),
            "tool_id": "refund",
            "input": {"order": "b", "amount": 900},
            "line": b,
            "kind": "approval",
        },
    ]
    assert result.error is not None and result.error.name == "ExecutionPaused"
    assert result.error.message == (
        "The program is paused: 2 tool calls are waiting for a decision by a person (not by "
        f'you): external_refund({{"order":"a","amount":500}}) at line {a} waits for approval; '
        f'external_refund({{"order":"b","amount":900}}) at line {b} waits for approval. '
        f"Execution {result.execution_id} will continue from this point once they are decided; "
        "calls already made will not run again, and a denied call reaches the program as "
        "ApprovalDeniedError. Do not run this code again (that would repeat its calls): tell "
        "the user what is waiting for approval."
    )
    # The small refund (no approval needed by the predicate) and the counter ran meanwhile.
    assert effects.runs == [("counter", {}), ("refund", {"order": "c", "amount": 5})]
    shown = result.to_json()
    assert list(shown) == ["success", "status", "logs", "error", "execution_id", "pending"]
    assert shown["status"] == "paused" and shown["pending"][0]["kind"] == "approval"
    # The store's approval queue shows the same calls.
    queue = await store.pending()
    assert [(p.execution_id, p.call) for p in queue] == [
        (result.execution_id, call) for call in result.pending
    ]


async def test_without_a_store_none_still_denies_and_a_reason_is_shown(lang: Lang) -> None:
    effects = Effects()
    refund = refund_tool(effects)
    code = lang(
        {
            "typescript": """
    const r = [];
    for (const order of ["a", "b"]) {
      try { r.push(await external_refund({ order, amount: 500 })) }
      catch (e) { r.push(`${e.name}: ${e.message}`) }
    }
    return r;
    """,
            "python": """
r = []
for order in ["a", "b"]:
    try:
        r.append(await external_refund(order=order, amount=500))
    except PermissionError as e:
        r.append(f"ApprovalDeniedError: {e}")
r
""",
        }
    )
    answers = iter([None, "over the daily limit"])
    tool = code_tool(lang, None, [refund], approve=lambda call: next(answers))
    result = await tool.execute({"code": code})
    assert result.to_json() == {
        "success": True,
        "result": [
            "ApprovalDeniedError: Tool refund requires approval and was not approved",
            "ApprovalDeniedError: Tool refund requires approval and was not approved: "
            "over the daily limit",
        ],
        "logs": [],
    }
    assert (result.status, result.execution_id, effects.runs) == ("completed", None, [])


async def test_a_predicate_gates_only_the_calls_it_matches(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    seen: list[ToolCall] = []

    def approve(call: ToolCall) -> bool:
        seen.append(call)
        return True

    tool = code_tool(lang, store, [refund_tool(effects)], approve=approve)
    code = lang(
        {
            "typescript": "return [await external_refund({order: 'a', amount: 5}),\n"
            "        await external_refund({order: 'b', amount: 500})]",
            "python": "[await external_refund(order='a', amount=5),\n"
            " await external_refund(order='b', amount=500)]",
        }
    )
    result = await tool.execute({"code": code})
    assert result.result == [{"refunded": "a"}, {"refunded": "b"}]
    assert [(c.tool_id, c.input, c.execution_id, c.call_id) for c in seen] == [
        ("refund", {"order": "b", "amount": 500}, result.execution_id, Matches(r"2-[0-9a-f]{12}"))
    ]


async def test_a_predicate_that_raises_requires_approval(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    broken = effects.tool("wipe", require_approval=lambda input: input["missing"] > 1)
    code = lang({"typescript": "return await external_wipe({})", "python": "await external_wipe()"})
    result = await code_tool(lang, store, [broken]).execute({"code": code})
    assert result.status == "paused" and effects.runs == []


# -- 4: resuming ------------------------------------------------------------------------------
async def test_mixed_decisions_the_program_handles_the_denial_and_finishes(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tool = code_tool(lang, store, [effects.tool("counter", lambda _: 3), refund_tool(effects)])
    paused = await tool.execute({"code": lang(TWO_REFUNDS)})
    assert paused.execution_id is not None
    first, second = (call.call_id for call in paused.pending)

    result = await tool.resume(paused.execution_id, {first: True, second: "over the limit"})

    assert result.to_json() == {
        "success": True,
        "result": {
            "total": 3,
            "results": [
                {"refunded": "a"},
                "ApprovalDeniedError: Tool refund requires approval and was not approved: "
                "over the limit",
                {"refunded": "c"},
            ],
        },
        "logs": [],
        "execution_id": paused.execution_id,
    }
    assert result.status == "completed"
    # The counter and the small refund ran once, before the pause; the approved one once, now.
    assert effects.runs == [
        ("counter", {}),
        ("refund", {"order": "c", "amount": 5}),
        ("refund", {"order": "a", "amount": 500}),
    ]
    assert effects.contexts[2].idempotency_key == f"{paused.execution_id}:2"
    assert effects.contexts[2].execution_id == paused.execution_id
    state = await store.get(paused.execution_id)
    assert state is not None and (state.status, state.passes) == ("completed", 2)
    assert state.result == result.to_json()


async def test_undecided_calls_pause_again_and_decisions_may_come_from_the_store(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tool = code_tool(lang, store, [effects.tool("counter", lambda _: 3), refund_tool(effects)])
    paused = await tool.execute({"code": lang(TWO_REFUNDS)})
    assert paused.execution_id is not None
    first, second = paused.pending

    again = await tool.resume(paused.execution_id, {first.call_id: False})

    assert again.status == "paused" and again.pending == [second]
    assert effects.names() == ["counter", "refund"]
    await store.decide(paused.execution_id, second.call_id, True)  # e.g. from an approval UI
    done = await tool.resume(paused.execution_id)
    assert done.result == {
        "total": 3,
        "results": [
            "ApprovalDeniedError: Tool refund requires approval and was not approved",
            {"refunded": "b"},
            {"refunded": "c"},
        ],
    }
    assert effects.names() == ["counter", "refund", "refund"]


async def test_the_approve_callback_is_asked_again_for_undecided_calls(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    answers: dict[str, bool | None] = {}
    tool = code_tool(
        lang,
        store,
        [refund_tool(effects)],
        approve=lambda call: answers.get(call.input["order"]),
    )
    paused = await tool.execute({"code": lang(ONE_REFUND)})
    assert paused.execution_id is not None and paused.status == "paused"
    answers["a"] = True  # e.g. a ticket was approved elsewhere
    done = await tool.resume(paused.execution_id)
    assert (done.result, effects.names()) == ({"refunded": "a"}, ["refund"])


async def test_resuming_what_is_not_paused_runs_nothing(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    tool = code_tool(lang, store, [effects.tool("counter", lambda _: 3), refund_tool(effects)])
    unknown = await tool.resume("0" * 32, {})
    assert unknown.to_json() == {
        "success": False,
        "logs": [],
        "error": {
            "name": "ExecutionNotFoundError",
            "message": f"There is no execution {'0' * 32} in this store (it never existed here, "
            "or it finished and was pruned).",
        },
        "execution_id": "0" * 32,
    }
    paused = await tool.execute({"code": lang(TWO_REFUNDS)})
    assert paused.execution_id is not None
    bad = await tool.resume(paused.execution_id, {"9-000000000000": True})
    assert bad.error is not None and bad.error.name == "DecisionError"
    assert bad.error.message.startswith(f"Execution {paused.execution_id} has no call 9-0000")
    decisions = {call.call_id: True for call in paused.pending}
    assert (await tool.resume(paused.execution_id, decisions)).success
    runs = len(effects.runs)
    again = await tool.resume(paused.execution_id, decisions)
    assert again.error is not None and again.error.name == "ExecutionNotPausedError"
    assert again.error.message == Matches(
        rf"Execution {paused.execution_id} is not paused: it completed at .* UTC\. "
        r"It cannot be resumed or decided again\."
    )
    assert len(effects.runs) == runs


async def test_two_concurrent_resumes_exactly_one_runs(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    tools = [effects.tool("counter", lambda _: 3), refund_tool(effects)]
    tool = code_tool(lang, store, tools)
    paused = await tool.execute({"code": lang(TWO_REFUNDS)})
    assert paused.execution_id is not None
    decisions = {call.call_id: True for call in paused.pending}
    async with SqliteStore(store.path) as other_store:  # as another process would
        other = code_tool(lang, other_store, tools)
        results = await asyncio.gather(
            tool.resume(paused.execution_id, decisions),
            other.resume(paused.execution_id, decisions),
        )
    assert sorted(r.status for r in results) == ["completed", "failed"]
    [refused] = [r for r in results if not r.success]
    assert refused.error is not None and refused.error.name == "ExecutionNotPausedError"
    assert effects.names() == ["counter", "refund", "refund", "refund"]


# -- 5: deterministic replay ------------------------------------------------------------------
async def test_recorded_outcomes_are_replayed_never_run_again(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    prices = iter([10, 99])  # a tool whose result would differ now
    price = effects.tool("price", lambda _: next(prices))
    failing = effects.tool("stock", lambda _: (_ for _ in ()).throw(LookupError("no stock")))
    code = lang(
        {
            "typescript": """
    const price = await external_price({});
    let stock;
    try { stock = await external_stock({}) } catch (e) { stock = `${e.name}: ${e.message}` }
    await external_refund({ order: "a", amount: 500 });
    return { price, stock };
    """,
            "python": """
price = await external_price()
try:
    stock = await external_stock()
except LookupError as e:
    stock = f"{type(e).__name__}: {e}"
await external_refund(order="a", amount=500)
{"price": price, "stock": stock}
""",
        }
    )
    tool = code_tool(lang, store, [price, failing, refund_tool(effects)])
    paused = await tool.execute({"code": code})
    assert paused.execution_id is not None
    done = await tool.resume(paused.execution_id, {paused.pending[0].call_id: True})
    assert done.result == {"price": 10, "stock": "LookupError: no stock"}
    assert effects.names() == ["price", "stock", "refund"]


NONDETERMINISM = {
    "typescript": """
const bytes = crypto.getRandomValues(new Uint8Array(8));
const seen = {
  now: Date.now(),
  date: new Date().toISOString(),
  called: typeof Date(),
  random: [Math.random(), Math.random()],
  uuid: crypto.randomUUID(),
  bytes: Array.from(bytes),
  perf: performance.now(),
  isDate: new Date() instanceof Date,
};
console.log(JSON.stringify(seen));
await external_refund({ order: "a", amount: 500 });
return { seen, later: Date.now() >= seen.now };
""",
    # Everything a Monty program can read that differs between runs: the clocks, the dates,
    # random numbers (the module's own and a Random() of the program's) and os.urandom.
    "python": """
import datetime, json, os, random, time
rng = random.Random()
seen = {
    "now": time.time(),
    "monotonic": time.monotonic(),
    "date": datetime.datetime.now().isoformat(),
    "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    "today": datetime.date.today().isoformat(),
    "random": [random.random(), random.random()],
    "instance": rng.randint(0, 10**9),
    "choice": random.choice("abcdefghijklmnopqrstuvwxyz"),
    "bytes": list(os.urandom(8)),
}
print(json.dumps(seen))
await external_refund(order="a", amount=500)
{"seen": seen, "later": time.monotonic() >= seen["monotonic"]}
""",
}


async def test_clock_and_random_values_seen_before_the_pause_are_the_same_after(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tool = code_tool(lang, store, [refund_tool(effects)])
    paused = await tool.execute({"code": lang(NONDETERMINISM)})
    assert paused.execution_id is not None
    before = json.loads(paused.logs[0])
    if lang.name == "typescript":
        assert before["isDate"] is True and before["called"] == "string"
    else:  # the sandbox's zone is UTC, as without a store
        assert "+" not in before["date"] and before["utc"].endswith("+00:00")
        assert before["date"][:10] == before["utc"][:10] == before["today"]
        assert len(before["bytes"]) == 8 and before["random"][0] != before["random"][1]

    await asyncio.sleep(0.05)
    done = await tool.resume(paused.execution_id, {paused.pending[0].call_id: True})

    assert done.result == {"seen": before, "later": True}
    assert done.logs == paused.logs  # the program ran again from its start


ORDERED = {
    "typescript": """
const order = [];
const slow = external_slow({}).then((v) => order.push(`slow ${v}`));
const fast = external_fast({}).then((v) => order.push(`fast ${v}`));
const timer = new Promise((r) => setTimeout(r, 300)).then(() => order.push("timer"));
const first = await Promise.race([slow, fast, timer].map((p, i) => p.then(() => i)));
await Promise.all([slow, fast, timer]);
order.push(`race won by ${first}`);
console.log(order.join(", "));
await external_refund({ order: "a", amount: 500 });
return order;
""",
    "python": """
import asyncio
order = []
async def note(name, call):
    order.append(f"{name} {await call}")
async def timer():
    await asyncio.sleep(0.3)
    order.append("timer")
await asyncio.gather(note("slow", external_slow()), note("fast", external_fast()), timer())
order.append(f"first was {order[0]}")
print(", ".join(order))
await external_refund(order="a", amount=500)
order
""",
}


async def test_settle_and_timer_order_replays_exactly(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    delays = {"slow": 1.0, "fast": 0.0}
    tools = [
        effects.tool("slow", lambda _: 1, delay=delays["slow"]),
        effects.tool("fast", lambda _: 2, delay=delays["fast"]),
        refund_tool(effects),
    ]
    tool = code_tool(lang, store, tools)
    paused = await tool.execute({"code": lang(ORDERED)})
    last = lang({"typescript": "race won by 1", "python": "first was fast 2"})
    assert paused.logs == [f"fast 2, timer, slow 1, {last}"]
    assert paused.execution_id is not None

    # On replay both recorded results are answered at once, and the timer would fire late:
    # the recorded order (fast, timer, slow) must hold all the same.
    done = await tool.resume(paused.execution_id, {paused.pending[0].call_id: True})

    assert done.result == ["fast 2", "timer", "slow 1", last]
    assert effects.names() == ["slow", "fast", "refund"]


async def test_a_pending_timer_keeps_the_program_running_before_it_pauses(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tools = [effects.tool("note"), refund_tool(effects)]
    code = lang(
        {
            "typescript": """
    setTimeout(() => external_note({ at: "timer" }), 200);
    return await external_refund({ order: "a", amount: 500 });
    """,
            "python": """
import asyncio
async def later():
    await asyncio.sleep(0.2)
    await external_note(at="timer")
_, refund = await asyncio.gather(later(), external_refund(order="a", amount=500))
refund
""",
        }
    )
    paused = await code_tool(lang, store, tools).execute({"code": code})
    assert paused.status == "paused"
    assert effects.runs == [("note", {"at": "timer"})]  # it ran before the pause
    assert [c.tool_id for c in paused.pending] == ["refund"]


async def test_a_program_that_never_settles_times_out_and_says_what_waited(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    code = lang(
        {
            "typescript": """
    setInterval(() => {}, 50);
    return await external_refund({ order: "a", amount: 500 });
    """,
            "python": """
import asyncio
async def tick():
    while True:
        await asyncio.sleep(0.05)
await asyncio.gather(tick(), external_refund(order="a", amount=500))
""",
        }
    )
    result = await code_tool(lang, store, [refund_tool(effects)], timeout=1500).execute(
        {"code": code}
    )
    assert result.error is not None and result.error.name == "TimeoutError"
    assert result.error.message.endswith(
        "1 call(s) were waiting for a decision, but the program never became idle to pause "
        "(a timer or interval was still pending)."
    )
    state = await store.get(result.execution_id or "")
    assert state is not None and state.status == "failed"


async def test_a_different_call_at_the_same_step_is_a_divergence(
    deno: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tools = [effects.tool("note"), effects.tool("counter", lambda _: 1), refund_tool(effects)]
    # The module's URL differs in every realm and is no recorded value: the replay diverges.
    code = """
    await external_counter({});
    const approved = external_refund({ order: "a", amount: 500 });
    await external_note({ where: import.meta.url });
    await approved;
    await external_counter({});
    return "done";
    """
    tool = code_tool(deno, store, tools)
    paused = await tool.execute({"code": code})
    assert paused.execution_id is not None and [c.tool_id for c in paused.pending] == ["refund"]
    runs = list(effects.runs)

    result = await tool.resume(paused.execution_id, {paused.pending[0].call_id: True})

    assert result.error is not None
    assert (result.success, result.error.name, result.error.line) == (
        False,
        "ReplayDivergenceError",
        4,
    )
    assert result.error.message == Matches(
        r'On resume, the program made a different call at step 3: external_note\(\{"where":'
        r'"blob:null/[-0-9a-f]+"\}\) at line 4, where the first run made external_note\(\{'
        r'"where":"blob:null/[-0-9a-f]+"\}\) at line 4\. The replay stopped there and nothing '
        r"after it ran\. Calls already applied: external_counter\(\{\}\) \(step 1\), "
        r'external_note\(\{"where":"blob:null/[-0-9a-f]+"\}\) \(step 3\)\. A resumed program '
        r"runs again from its start, so it must make the same calls in the same order \(clock "
        r"and random values are replayed; other outside inputs are not\)\. Do not run the "
        r"program again for what already ran\."
    )
    assert effects.runs == runs  # the approved refund did not run, nor anything after
    state = await store.get(paused.execution_id)
    assert state is not None and state.status == "failed"


async def test_a_record_the_program_does_not_match_is_a_divergence(
    lang: Lang, store: SqliteStore
) -> None:
    # A Python program in Monty sees nothing unrecorded that could change its calls, so the
    # record is made to disagree instead (as a record written by another program would).
    effects = Effects()
    tools = [effects.tool("note"), effects.tool("counter", lambda _: 1), refund_tool(effects)]
    code = lang(
        {
            "typescript": """
await external_counter({});
const approved = external_refund({ order: "a", amount: 500 });
await external_note({ where: "here" });
await approved;
await external_counter({});
return "done";
""",
            "python": """
import asyncio
await external_counter()
async def note():
    await external_note(where="here")
await asyncio.gather(external_refund(order="a", amount=500), note())
await external_counter()
"done"
""",
        }
    )
    line = lang({"typescript": 4, "python": 5})
    tool = code_tool(lang, store, tools)
    paused = await tool.execute({"code": code})
    assert paused.execution_id is not None and [c.tool_id for c in paused.pending] == ["refund"]
    there = '{"where":"there"}'
    with sqlite3.connect(store.path) as db:
        db.execute(
            "UPDATE calls SET input = ?, input_hash = ? WHERE execution_id = ? AND step = 3",
            [there, input_hash("note", there), paused.execution_id],
        )
    runs = list(effects.runs)

    result = await tool.resume(paused.execution_id, {paused.pending[0].call_id: True})

    assert result.error is not None
    assert (result.error.name, result.error.line) == ("ReplayDivergenceError", line)
    assert result.error.message == (
        f'On resume, the program made a different call at step 3: external_note({{"where":'
        f'"here"}}) at line {line}, where the first run made external_note({{"where":"there"}}) '
        f"at line {line}. The replay stopped there and nothing after it ran. Calls already "
        'applied: external_counter({}) (step 1), external_note({"where":"there"}) (step 3). A '
        "resumed program runs again from its start, so it must make the same calls in the same "
        "order (clock and random values are replayed; other outside inputs are not). Do not run "
        "the program again for what already ran."
    )
    assert effects.runs == runs  # the approved refund did not run, nor anything after


async def test_a_changed_program_or_tool_set_is_refused(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    tools = [effects.tool("counter", lambda _: 3), refund_tool(effects)]
    paused = await code_tool(lang, store, tools).execute({"code": lang(TWO_REFUNDS)})
    execution_id = paused.execution_id
    assert execution_id is not None
    decisions = {call.call_id: True for call in paused.pending}
    runs = list(effects.runs)

    more_tools = code_tool(lang, store, [*tools, effects.tool("note")])
    refused = await more_tools.resume(execution_id, decisions)
    assert refused.error is not None and refused.error.name == "ProgramChangedError"
    assert refused.error.message == (
        f"Execution {execution_id} cannot resume: tool external_note was added. A resume runs "
        "the recorded program again against the same tools, so nothing ran. Resume it with the "
        "code tool it paused in, or start a new execution."
    )
    comment = lang({"typescript": "// edited", "python": "# edited"})
    with sqlite3.connect(store.path) as db:  # the stored program changed under us
        db.execute(
            "UPDATE executions SET code = code || ? WHERE id = ?", ["\n" + comment, execution_id]
        )
    refused = await code_tool(lang, store, tools).resume(execution_id, decisions)
    assert refused.error is not None and refused.error.message.startswith(
        f"Execution {execution_id} cannot resume: its program is not the one that ran "
        "(the code, or how it is prepared)."
    )
    assert effects.runs == runs
    state = await store.get(execution_id)
    assert state is not None and state.status == "paused"  # still waiting, untouched


# -- 7: expiry ------------------------------------------------------------------------------
async def test_a_paused_execution_expires(lang: Lang, store: SqliteStore) -> None:
    effects = Effects()
    tool = code_tool(lang, store, [refund_tool(effects)], pause_ttl=0.5)
    paused = await tool.execute({"code": lang(ONE_REFUND)})
    assert paused.execution_id is not None
    await asyncio.sleep(0.7)
    assert await store.pending() == []
    result = await tool.resume(paused.execution_id, {paused.pending[0].call_id: True})
    assert result.error is not None and result.error.name == "ExecutionExpiredError"
    assert result.error.message == Matches(
        rf"Execution {paused.execution_id} expired at .* UTC: it waited longer than its "
        r"pause_ttl of 0\.5s, so none of its waiting calls will run\. Start a new execution if "
        r"the task still needs doing\."
    )
    assert effects.runs == []


class _NoReplay(Sandbox):
    """A runtime that cannot record and replay (the default of the protocol)."""

    async def execute(self, job: Any, host: Any) -> Any:
        raise AssertionError("never run")


def test_pause_ttl_takes_a_timedelta_or_seconds_and_the_store_needs_a_durable_sandbox() -> None:
    from datetime import timedelta

    sandbox = DenoSandbox(prestart=0)
    store = SqliteStore(":memory:")
    tool, _ = create_code_mode(tools=[], sandbox=sandbox, store=store)
    assert tool.pause_ttl == 86_400.0
    tool, _ = create_code_mode(
        tools=[], sandbox=sandbox, store=store, pause_ttl=timedelta(minutes=5)
    )
    assert tool.pause_ttl == 300.0
    with pytest.raises(ValueError, match="pause_ttl must be positive, got 0"):
        create_code_mode(tools=[], sandbox=sandbox, store=store, pause_ttl=0)
    with pytest.raises(TypeError, match="store must be an ExecutionStore"):
        create_code_mode(tools=[], sandbox=sandbox, store=object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"resume\(\) needs a store"):
        asyncio.run(create_code_mode(tools=[], sandbox=sandbox)[0].resume("x"))
    with pytest.raises(ValueError) as refused:
        create_code_mode(tools=[], sandbox=_NoReplay(), store=store)
    assert str(refused.value) == (
        "_NoReplay cannot pause and resume programs; use store= with DenoSandbox, MontySandbox "
        "or LocalSandbox"
    )
    store.close()


# -- the worker is untrusted ------------------------------------------------------------------
async def test_forged_idle_and_journal_messages_skip_no_approval_and_stop_no_running_call(
    deno: Lang, store: SqliteStore
) -> None:
    # (TypeScript only: a Python program has no channel to the host at all; Monty hands every
    # call to the host, which records what the program observed itself.)
    effects = Effects()
    tools = [effects.tool("slowNote", delay=0.3), refund_tool(effects)]
    code = """
    const note = external_slowNote({});
    const refund = external_refund({ order: "a", amount: 500 });
    for (let n = 1; n < 20; n++) {
      self.postMessage({ t: "idle", n, o: 0, j: { e0: 0, e: ["s2", "s1"], v0: 0, v: [["d", 1]] } });
    }
    return [await note, await refund];
    """
    paused = await code_tool(deno, store, tools).execute({"code": code})
    assert paused.status == "paused" and [c.tool_id for c in paused.pending] == ["refund"]
    assert effects.names() == ["slowNote"]
    state = await store.get(paused.execution_id or "")
    assert state is not None and [(c.step, c.state) for c in state.calls] == [
        (1, "ok"),
        (2, "pending"),
    ]


# -- more of the engine ----------------------------------------------------------------------
async def test_a_slow_live_call_finishes_before_the_execution_pauses(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tools = [effects.tool("report", lambda _: "sent", delay=0.5), refund_tool(effects)]
    code = lang(
        {
            "typescript": """
    const [report, refund] = await Promise.all([
      external_report({}),
      external_refund({ order: "a", amount: 500 }),
    ]);
    return { report, refund };
    """,
            "python": """
import asyncio
report, refund = await asyncio.gather(
    external_report(),
    external_refund(order="a", amount=500),
)
{"report": report, "refund": refund}
""",
        }
    )
    tool = code_tool(lang, store, tools)
    paused = await tool.execute({"code": code})
    assert paused.status == "paused" and effects.names() == ["report"]
    state = await store.get(paused.execution_id or "")
    assert state is not None
    assert [(c.name, c.state, c.value) for c in state.calls] == [
        ("report", "ok", "sent"),
        ("refund", "pending", None),
    ]
    done = await tool.resume(paused.execution_id or "", {paused.pending[0].call_id: True})
    assert done.result == {"report": "sent", "refund": {"refunded": "a"}}
    assert effects.names() == ["report", "refund"]


async def test_an_operation_in_flight_is_waited_for_and_its_order_replayed(
    deno: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tools = [effects.tool("lookup", lambda _: "found", delay=0.3), refund_tool(effects)]
    code = """
    const order = [];
    const lookup = external_lookup({}).then(() => order.push("lookup"));
    const digest = crypto.subtle.digest("SHA-256", new TextEncoder().encode("x"))
      .then((d) => order.push(`digest ${new Uint8Array(d)[0]}`));
    const refund = external_refund({ order: "a", amount: 500 });
    await Promise.all([lookup, digest]);
    await refund;
    return order;
    """
    tool = code_tool(deno, store, tools)
    paused = await tool.execute({"code": code})
    assert paused.status == "paused"
    done = await tool.resume(paused.execution_id or "", {paused.pending[0].call_id: True})
    # The lookup is answered at once on replay; the digest still comes first, as it did.
    assert done.result == ["digest 45", "lookup"]


async def test_calls_over_the_concurrency_limit_pause_in_turn(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    code = lang(
        {
            "typescript": """
    return await Promise.all(["a", "b", "c"].map((order) =>
      external_refund({ order, amount: 500 })));
    """,
            "python": """
import asyncio
await asyncio.gather(*[external_refund(order=o, amount=500) for o in ["a", "b", "c"]])
""",
        }
    )
    tool = code_tool(lang, store, [refund_tool(effects)], max_concurrent_tool_calls=2)
    paused = await tool.execute({"code": code})
    assert [c.input["order"] for c in paused.pending] == ["a", "b"]  # "c" waits in the sandbox
    execution_id = paused.execution_id or ""
    again = await tool.resume(execution_id, {c.call_id: True for c in paused.pending})
    assert [c.input["order"] for c in again.pending] == ["c"]
    done = await tool.resume(execution_id, {again.pending[0].call_id: True})
    assert done.result == [{"refunded": "a"}, {"refunded": "b"}, {"refunded": "c"}]
    assert sorted(input["order"] for _, input in effects.runs) == ["a", "b", "c"]  # once each


async def test_a_denial_by_the_callback_is_recorded_and_not_asked_again(
    lang: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    asked: list[str] = []

    def approve(call: ToolCall) -> bool | str | None:
        asked.append(call.input["order"])
        return "too late today" if call.input["order"] == "a" else None

    code = lang(
        {
            "typescript": """
    const a = await external_refund({ order: "a", amount: 500 }).catch((e) => e.message);
    const b = await external_refund({ order: "b", amount: 500 });
    return { a, b };
    """,
            "python": """
try:
    a = await external_refund(order="a", amount=500)
except PermissionError as e:
    a = str(e)
b = await external_refund(order="b", amount=500)
{"a": a, "b": b}
""",
        }
    )
    tool = code_tool(lang, store, [refund_tool(effects)], approve=approve)
    paused = await tool.execute({"code": code})
    assert asked == ["a", "b"] and [c.input["order"] for c in paused.pending] == ["b"]
    done = await tool.resume(paused.execution_id or "", {paused.pending[0].call_id: True})
    assert done.result == {
        "a": "Tool refund requires approval and was not approved: too late today",
        "b": {"refunded": "b"},
    }
    assert asked == ["a", "b"]  # neither asked again: one is recorded, one was decided


class FailingStore(SqliteStore):
    """Records fail from the ``fail_at``-th on (a full disk, a lost database)."""

    fail_at = 2

    async def record(self, *args: Any, **kwargs: Any) -> None:
        self.fail_at -= 1
        if self.fail_at <= 0:
            raise OSError("disk I/O error")
        await super().record(*args, **kwargs)


async def test_a_failing_store_stops_the_execution_before_an_unrecorded_call_runs(
    lang: Lang, tmp_path: Path
) -> None:
    effects = Effects()
    tools = [effects.tool("first"), effects.tool("second")]
    async with FailingStore(tmp_path / "runs.db") as store:
        tool = code_tool(lang, store, tools)
        code = lang(
            {
                "typescript": "await external_first({}); await external_second({}); return 1",
                "python": "await external_first()\nawait external_second()\n1",
            }
        )
        result = await tool.execute({"code": code})
    assert result.error is not None and result.error.name == "ExecutionStoreError"
    assert result.error.message == Matches(
        r"The host could not record call 1 of execution [0-9a-f]{32} \(disk I/O error\); the "
        r"execution stopped so that no call runs unrecorded\."
    )
    assert effects.names() == ["first"]  # its start was recorded; its outcome could not be


DATES = """
class Stamp extends Date {}
const seen = {
  epoch: new Date(0).toISOString(),
  utc: Date.UTC(2020, 0, 2),
  parse: Date.parse("2020-01-02T00:00:00Z"),
  sub: new Stamp(0).getTime() === 0 && new Stamp() instanceof Date,
  ctor: new Date().constructor === Date,
  perf: performance.now(),
  origin: performance.timeOrigin,
};
await external_refund({ order: "a", amount: 500 });
return { ...seen, later: performance.now() >= seen.perf, origin2: performance.timeOrigin };
"""


async def test_dates_keep_their_meaning_and_performance_now_never_goes_back(
    deno: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    tool = code_tool(deno, store, [refund_tool(effects)])
    paused = await tool.execute({"code": DATES})
    await asyncio.sleep(0.2)
    done = await tool.resume(paused.execution_id or "", {paused.pending[0].call_id: True})
    assert done.result is not None
    assert {k: v for k, v in done.result.items() if k not in ("perf", "origin", "origin2")} == {
        "epoch": "1970-01-01T00:00:00.000Z",
        "utc": 1577923200000,
        "parse": 1577923200000,
        "sub": True,
        "ctor": True,
        "later": True,
    }
    assert done.result["origin"] == done.result["origin2"]


async def test_python_clocks_sleeps_and_seeds_replay_and_go_live_after(
    monty: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    code = """
import datetime, random, time
start = time.monotonic()
time.sleep(0.05)
slept = time.monotonic() - start
random.seed(7)
seeded = random.random()
fixed = datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone.utc).timestamp()
print(start, slept, seeded)
await external_refund(order="a", amount=500)
after = time.monotonic()
{"slept": slept >= 0.05, "seeded": seeded, "fixed": fixed, "later": after > start}
"""
    tool = code_tool(monty, store, [refund_tool(effects)])
    paused = await tool.execute({"code": code})
    assert paused.status == "paused", paused
    state = await store.get(paused.execution_id or "")
    assert state is not None
    tape = [entry for chunk in state.tape for entry in json.loads(chunk)["v"]]
    assert [kind for kind, _ in tape] == ["d", "s", "d"]  # the sleep is in the record
    await asyncio.sleep(0.05)
    done = await tool.resume(paused.execution_id or "", {paused.pending[0].call_id: True})
    assert done.result == {
        "slept": True,
        "seeded": 0.32383276483316237,  # random.seed(7) is the program's: nothing to record
        "fixed": 1577923200.0,
        "later": True,
    }
    assert done.logs == paused.logs


async def test_a_python_record_that_does_not_match_stops_the_replay(
    monty: Lang, store: SqliteStore
) -> None:
    effects = Effects()
    code = """
import random, time
now = time.time()
await external_refund(order="a", amount=500)
now
"""
    tool = code_tool(monty, store, [refund_tool(effects)])
    paused = await tool.execute({"code": code})
    execution_id = paused.execution_id or ""
    with sqlite3.connect(store.path) as db:  # the record says the program drew random bytes
        db.execute(
            "UPDATE tape SET chunk = ? WHERE execution_id = ?",
            ['{"v0":0,"v":[["r","00"]]}', execution_id],
        )
    result = await tool.resume(execution_id, {paused.pending[0].call_id: True})
    assert result.to_json() == {
        "success": False,
        "logs": [],
        "error": {
            "name": "ReplayDivergenceError",
            "message": "On resume, the program read the clock where its first run drew random "
            "bytes (value 1 of its record); the program is not deterministic.",
            "line": 3,
        },
        "execution_id": execution_id,
    }
    assert effects.runs == []


async def test_local_sandbox_runs_durable_executions_too(store: SqliteStore) -> None:
    from codemode import LocalSandbox

    effects = Effects()
    async with LocalSandbox(prestart=0) as local:
        tool = code_tool(Lang("typescript", local), store, [refund_tool(effects)])
        paused = await tool.execute({"code": NONDETERMINISM["typescript"]})
        done = await tool.resume(paused.execution_id or "", {paused.pending[0].call_id: True})
    assert done.result == {"seen": json.loads(paused.logs[0]), "later": True}


async def test_a_program_that_reads_the_clock_without_end_is_stopped(
    lang: Lang, store: SqliteStore
) -> None:
    code = lang(
        {
            "typescript": "let t = 0\nfor (let i = 0; i < 300000; i++) t = Date.now()\nreturn t",
            "python": "import time\nt = [time.time() for i in range(300000)]\nt[-1]",
        }
    )
    result = await code_tool(lang, store, []).execute({"code": code})
    assert result.error is not None
    assert (result.error.name, result.error.line) == ("DurableLimitError", 2)
    assert result.error.message == (
        "The program read the clock or random values more than 200000 times; a durable "
        "execution records each read. Read the clock once and reuse it."
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_execute_sync_and_resume_sync_work_with_a_store(tmp_path: Path, language: str) -> None:
    effects = Effects()
    sandbox = sandbox_for(language, prestart=0)
    store = SqliteStore(tmp_path / "runs.db")
    try:
        tool = code_tool(Lang(language, sandbox), store, [refund_tool(effects)])
        paused = tool.execute_sync({"code": ONE_REFUND[language]})
        assert paused.status == "paused" and paused.execution_id is not None
        done = tool.resume_sync(paused.execution_id, {paused.pending[0].call_id: True})
        assert (done.result, effects.names()) == ({"refunded": "a"}, ["refund"])
    finally:
        sandbox.close()  # type: ignore[attr-defined]
        store.close()
