"""pydantic-ai-harness's side of ``bench_monty.py --harness``: runs in the harness's own venv.

    python _harness_workloads.py WORKLOAD RUNS   # prints {"samples": [ms, ...]}

The same tools (pydantic input and output models) and the same programs as bench_monty.py,
driven the same way: an agent whose scripted model makes one ``run_code`` call.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai_harness import CodeMode


class Line(BaseModel):
    sku: str
    quantity: int
    unit_price: float


class Order(BaseModel):
    order_id: str
    customer: str
    lines: list[Line]
    total: float


class Delayed(BaseModel):
    tag: str
    waited_ms: int


PROGRAMS = {
    "trivial": "1",
    "calls": "total = 0\nfor i in range(1000):\n"
    "    total += (await get_order(order_id=f'o-{i}'))['total']\ntotal",
    "gather": "import asyncio\nall = await asyncio.gather(\n"
    "    *[delay(ms=50, tag=f't{i}') for i in range(100)])\nlen(all)",
}


def build(program: str) -> Agent[None, str]:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if any(isinstance(p, ToolReturnPart) for m in messages for p in m.parts):
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=[ToolCallPart("run_code", {"code": program})])

    # The defaults allow 100 nested calls and 1,000 suspensions; the calls workload needs more.
    agent: Agent[None, str] = Agent(
        FunctionModel(respond),
        capabilities=[CodeMode(max_tool_calls=2000, resource_limits={"max_suspensions": 10_000})],
    )

    @agent.tool_plain
    async def get_order(order_id: str) -> Order:
        """Get an order with its lines"""
        lines = [Line(sku=f"sku-{i}", quantity=i + 1, unit_price=2.5 * (i + 1)) for i in range(3)]
        total = sum(line.quantity * line.unit_price for line in lines)
        return Order(order_id=order_id, customer="ada", lines=lines, total=total)

    @agent.tool_plain
    async def delay(ms: int, tag: str) -> Delayed:
        """Wait, then answer"""
        await asyncio.sleep(ms / 1000)
        return Delayed(tag=tag, waited_ms=ms)

    return agent


async def main(workload: str, runs: int) -> None:
    agent = build(PROGRAMS[workload])
    first = await agent.run("go")
    returned = [p for m in first.all_messages() for p in m.parts if isinstance(p, ToolReturnPart)]
    if not returned or "error" in str(returned[-1].content).lower()[:200]:
        raise SystemExit(
            f"the harness program failed: {returned[-1].content if returned else None}"
        )
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await agent.run("go")
        samples.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"samples": samples}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
