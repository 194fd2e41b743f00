"""The spec's quickstart with the OpenAI Agents SDK: one `execute_typescript` tool plus its
instructions.

    python examples/openai_agents_agent.py

With OPENAI_API_KEY set, a real model answers (CODEMODE_MODEL, default "gpt-5.4"). Without a
key, a scripted `Model` plays the model: it sends the spec's example program (shop.ts) as one
`execute_typescript` call, then answers from the result, so the example runs offline.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelResponse, RunConfig, Runner, RunResult, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from shop import tools

from codemode import DenoSandbox, Sandbox, create_code_mode
from codemode.integrations.openai_agents import join_instructions, to_openai_agents

QUESTION = "What are the top 5 products and the average rating for each?"
PROGRAM = (Path(__file__).parent / "shop.ts").read_text()


def build_agent(model: Model | str, sandbox: Sandbox) -> Agent[Any]:
    """The quickstart: the code tool over the shop tools, its instructions in the agent's."""
    tool, instructions = create_code_mode(tools=tools, sandbox=sandbox)
    return Agent(
        name="shop-assistant",
        instructions=join_instructions("You are a helpful shopping assistant.", instructions),
        model=model,
        tools=[to_openai_agents(tool)],
    )


def answer(result: Any) -> str:
    """The final answer a model would write from the code tool's result."""
    if not result["success"]:
        return f"The program failed: {result['error']['message']}"
    lines = [f"- {row['name']}: {row['averageRating']}" for row in result["result"]]
    return "Top 5 products with their average rating:\n" + "\n".join(lines)


class ScriptedModel(Model):
    """Stands in for an LLM: one `execute_typescript` call, then an answer from its result."""

    async def get_response(
        self, system_instructions: str | None, input: str | list[Any], *args: Any, **kwargs: Any
    ) -> ModelResponse:
        outputs = [
            item["output"]
            for item in (input if isinstance(input, list) else [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        if not outputs:
            call = ResponseFunctionToolCall(
                type="function_call",
                id="fc_1",
                call_id="call_1",
                name="execute_typescript",
                arguments=json.dumps({"code": PROGRAM}),
                status="completed",
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(
            type="output_text", text=answer(json.loads(outputs[-1])), annotations=[]
        )
        message = ResponseOutputMessage(
            type="message", id="msg_1", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the scripted model does not stream; use Runner.run")


async def ask(model: Model | str, sandbox: Sandbox, question: str) -> RunResult:
    """Run the agent once; tracing is off for the scripted model (there is no one to send to)."""
    config = RunConfig(tracing_disabled=isinstance(model, ScriptedModel))
    return await Runner.run(build_agent(model, sandbox), question, run_config=config)


async def main() -> None:
    model: Model | str = ScriptedModel()
    if os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("CODEMODE_MODEL", "gpt-5.4")
    async with DenoSandbox() as sandbox:
        result = await ask(model, sandbox, QUESTION)
    print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
