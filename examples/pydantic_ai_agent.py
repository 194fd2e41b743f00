"""The spec's quickstart with pydantic-ai: one `execute_typescript` tool plus its instructions.

    python examples/pydantic_ai_agent.py

With OPENAI_API_KEY set, a real model answers (CODEMODE_MODEL, default "openai:gpt-5.4"; needs
`pip install 'pydantic-ai-slim[openai]'`). Without a key, a scripted `FunctionModel` plays the
model: it sends the spec's example program (shop.ts) as one `execute_typescript` call, then
answers from the result, so the example runs offline.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel
from shop import tools

from codemode import DenoSandbox, Sandbox, create_code_mode
from codemode.integrations.pydantic_ai import to_pydantic_ai

QUESTION = "What are the top 5 products and the average rating for each?"
PROGRAM = (Path(__file__).parent / "shop.ts").read_text()


def build_agent(model: Model | str, sandbox: Sandbox) -> Agent[None, str]:
    """The quickstart: the code tool over the shop tools, its instructions in the agent's."""
    tool, instructions = create_code_mode(tools=tools, sandbox=sandbox)
    return Agent(
        model,
        name="shop-assistant",
        instructions=["You are a helpful shopping assistant.", instructions],
        tools=[to_pydantic_ai(tool)],
    )


def answer(result: Any) -> str:
    """The final answer a model would write from the code tool's result."""
    if not result["success"]:
        return f"The program failed: {result['error']['message']}"
    lines = [f"- {row['name']}: {row['averageRating']}" for row in result["result"]]
    return "Top 5 products with their average rating:\n" + "\n".join(lines)


def scripted_model() -> FunctionModel:
    """Stands in for an LLM: one `execute_typescript` call, then an answer from its result."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returns:
            return ModelResponse(parts=[ToolCallPart("execute_typescript", {"code": PROGRAM})])
        content = returns[-1].content
        result = json.loads(content) if isinstance(content, str) else content
        return ModelResponse(parts=[TextPart(answer(result))])

    return FunctionModel(respond)


async def main() -> None:
    model: Model | str = scripted_model()
    if os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("CODEMODE_MODEL", "openai:gpt-5.4")
    async with DenoSandbox() as sandbox:
        result = await build_agent(model, sandbox).run(QUESTION)
    print(result.output)


if __name__ == "__main__":
    asyncio.run(main())
