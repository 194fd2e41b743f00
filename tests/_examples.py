"""What the framework tests share: the example programs' expected answer and a loader."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from codemode import Tool, ToolContext, create_tool, tool

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SHOP_RESULT = [
    {"name": "Espresso machine", "sales": 1520, "averageRating": 4.5},
    {"name": "Burr grinder", "sales": 1310, "averageRating": 3.67},
    {"name": "Milk frother", "sales": 990, "averageRating": 3.5},
    {"name": "Pour-over kettle", "sales": 870, "averageRating": 4.67},
    {"name": "Coffee scale", "sales": 640, "averageRating": 4},
]
SHOP_ANSWER = """\
Top 5 products with their average rating:
- Espresso machine: 4.5
- Burr grinder: 3.67
- Milk frother: 3.5
- Pour-over kettle: 4.67
- Coffee scale: 4"""


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py the way `python examples/<name>.py` sees its neighbours."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def whoami_tool(seen: list[dict[str, Any]]) -> Tool:
    @tool
    def whoami(context: ToolContext) -> str:
        """Who is asking."""
        seen.append(dict(context.request_context))
        return "ok"

    return whoami


# The program the adapters' approval tests pause: a counter call, then two refunds above the
# approval threshold at once (the second one's denial is caught).
PAUSING_PROGRAM = """
const count = await external_counter({});
const results = await Promise.all([
  external_refund({ order: "a", amount: 500 }),
  external_refund({ order: "b", amount: 900 }).catch((e) => `${e.name}: ${e.message}`),
]);
return { count, results };
"""


class RefundShop:
    """A counter and a refund tool that needs approval above 100. ``runs`` records every run as
    ``(tool, order)``; ``contexts`` the request context each refund ran with."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, Any]] = []
        self.contexts: list[dict[str, Any]] = []
        self.tools = [
            create_tool(
                id="counter",
                description="Count.",
                input_schema={"type": "object"},
                execute=lambda input: self.runs.append(("counter", None)) or len(self.runs),
            ),
            create_tool(
                id="refund",
                description="Refund an order.",
                input_schema={"type": "object"},
                execute=self._refund,
                require_approval=lambda input: input["amount"] > 100,
            ),
        ]

    def _refund(self, input: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        self.runs.append(("refund", input["order"]))
        self.contexts.append(dict(context.request_context))
        return {"refunded": input["order"]}
