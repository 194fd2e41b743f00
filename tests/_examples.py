"""What the framework tests share: the example programs' expected answer and a loader."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from codemode import Tool, ToolContext, tool

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
