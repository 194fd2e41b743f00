"""A small app for the cross-process durable tests: each command is one Python process that
runs or resumes an execution against a store (DB: an SQLite file, or a Redis or Postgres URL;
see ``open_store``) and prints the result as JSON.

    python durable_app.py run DB CODE_FILE          -> the result of a new execution
    python durable_app.py resume DB ID DECISIONS    -> the result of resuming it (decisions JSON)
    python durable_app.py pending DB                -> the store's approval queue

Tools (their side effects are lines appended to files under $DURABLE_APP_DIR, so the test can
count them across processes): ``counter`` (no approval), ``refund`` (approval when amount >
100), ``slow`` (writes a marker, then waits while ``$DURABLE_APP_DIR/hold`` exists: the crash
test kills the process meanwhile),
``slowIdempotent`` (the same, created idempotent=True). Approval callbacks defer every call.
A file ``$DURABLE_APP_DIR/go`` is waited for before resuming, so tests can start processes
first and release them together. Programs are TypeScript (in Deno), or Python (in Monty) when
$DURABLE_APP_LANGUAGE is ``python``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from codemode import DenoSandbox, MontySandbox, Sandbox, ToolContext, create_code_mode, create_tool
from codemode.stores import open_store

DIR = Path(os.environ["DURABLE_APP_DIR"])


def effect(name: str, value: Any) -> None:
    with open(DIR / f"{name}.log", "a") as file:
        file.write(json.dumps(value) + "\n")


def counter(input: dict[str, Any], context: ToolContext) -> int:
    effect("counter", {"key": context.idempotency_key})
    return len((DIR / "counter.log").read_text().splitlines())


def refund(input: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    effect("refund", {"order": input["order"], "key": context.idempotency_key})
    return {"refunded": input["order"]}


async def slow(input: dict[str, Any], context: ToolContext) -> str:
    effect("slow", {"key": context.idempotency_key})
    while (DIR / "hold").exists():  # the test kills the process meanwhile
        await asyncio.sleep(0.01)
    return "done"


OBJECT = {"type": "object"}
TOOLS = [
    create_tool(id="counter", description="Counts.", input_schema=OBJECT, execute=counter),
    create_tool(
        id="refund",
        description="Refunds an order.",
        input_schema={
            "type": "object",
            "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["order", "amount"],
        },
        execute=refund,
        require_approval=lambda input: input["amount"] > 100,
    ),
    create_tool(id="slow", description="Slow.", input_schema=OBJECT, execute=slow),
    create_tool(
        id="slowIdempotent",
        description="Slow, safe to repeat.",
        input_schema=OBJECT,
        execute=slow,
        idempotent=True,
    ),
]


def make_sandbox() -> Sandbox:
    if os.environ.get("DURABLE_APP_LANGUAGE") == "python":
        return MontySandbox(prestart=1)
    return DenoSandbox(prestart=1)


async def main(command: str, db: str, *args: str) -> None:
    async with make_sandbox() as sandbox, open_store(db) as store:
        code_tool, _ = create_code_mode(
            tools=TOOLS, sandbox=sandbox, store=store, approve=lambda call: None, timeout=120_000
        )
        if command == "run":
            result = await code_tool.execute({"code": Path(args[0]).read_text()})
            print(json.dumps(result.to_json()), flush=True)
        elif command == "resume":
            while not (DIR / "go").exists():
                time.sleep(0.002)
            decisions = json.loads(args[1])
            result = await code_tool.resume(args[0], decisions)
            print(json.dumps(result.to_json()), flush=True)
        elif command == "pending":
            queue = await store.pending()
            print(
                json.dumps([dataclasses.asdict(p) | {"call": p.call.model_dump()} for p in queue])
            )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
