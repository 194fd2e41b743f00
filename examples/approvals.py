"""Approvals that wait: a program pauses on refunds over 100, a person decides, and the program
resumes where it stopped, even in another process.

    python examples/approvals.py run               # runs the program: it pauses
    python examples/approvals.py pending           # the approval queue
    python examples/approvals.py approve ID CALL   # or: deny ID CALL "reason"
    python examples/approvals.py resume ID         # continues it, nothing repeated

The store is ``approvals.db`` in the current directory (``APPROVALS_DB`` to change it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from pydantic import BaseModel

from codemode import DenoSandbox, ToolContext, create_code_mode, create_tool
from codemode.stores import SqliteStore

ORDERS = {"o1": 40.0, "o2": 250.0, "o3": 980.0}


class OrderInput(BaseModel):
    orderId: str


class RefundInput(BaseModel):
    orderId: str
    amount: float


async def get_order(input: OrderInput) -> dict[str, object]:
    return {"orderId": input.orderId, "total": ORDERS[input.orderId]}


async def refund(input: RefundInput, context: ToolContext) -> dict[str, object]:
    # A payment API that deduplicates would get context.idempotency_key here.
    print(f"  [refund tool] {input.orderId}: {input.amount} (key {context.idempotency_key})")
    return {"orderId": input.orderId, "refunded": input.amount}


TOOLS = [
    create_tool(
        id="getOrder", description="An order and its total.", input_schema=OrderInput,
        execute=get_order,
    ),
    create_tool(
        id="refund", description="Refund an order in full.", input_schema=RefundInput,
        execute=refund, require_approval=lambda input: input.amount > 100,
    ),
]  # fmt: skip

PROGRAM = """
const ids = ["o1", "o2", "o3"];
const orders = await Promise.all(ids.map((orderId) => external_getOrder({ orderId })));
const refunds = await Promise.allSettled(
  orders.map((o) => external_refund({ orderId: o.orderId, amount: o.total })),
);
return refunds.map((r) =>
  r.status === "fulfilled" ? r.value : `not refunded: ${r.reason.message}`);
"""


async def main(command: str, *args: str) -> None:
    path = os.environ.get("APPROVALS_DB", "approvals.db")
    async with DenoSandbox(prestart=1) as sandbox, SqliteStore(path) as store:
        # approve() answers None: every gated call waits for a person.
        tool, _ = create_code_mode(
            tools=TOOLS, sandbox=sandbox, store=store, approve=lambda call: None
        )
        if command == "run":
            result = await tool.execute({"code": PROGRAM})
        elif command == "pending":
            for waiting in await store.pending():
                call = waiting.call
                print(waiting.execution_id, call.call_id, call.tool_id, json.dumps(call.input))
            return
        elif command in ("approve", "deny"):
            decision: bool | str = True if command == "approve" else (args[2:] or [False])[0]
            await store.decide(args[0], args[1], decision)
            print(f"{'approved' if decision is True else 'denied'} {args[1]}")
            return
        elif command == "resume":
            result = await tool.resume(args[0])
        else:
            raise SystemExit(__doc__)
        print(json.dumps(result.to_json(), indent=2))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
