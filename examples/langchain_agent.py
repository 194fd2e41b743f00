"""The spec's quickstart with LangChain: one `execute_typescript` tool plus its instructions, in
a plain tool-calling loop.

    python examples/langchain_agent.py

With OPENAI_API_KEY set, a real model answers (CODEMODE_MODEL, default "gpt-5.4"; needs
`pip install langchain-openai`). Without a key, a scripted chat model plays the model: it sends
the spec's example program (shop.ts) as one `execute_typescript` call, then answers from the
result, so the example runs offline.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from shop import tools

from codemode import DenoSandbox, Sandbox, create_code_mode
from codemode.integrations.langchain import system_message, to_langchain

QUESTION = "What are the top 5 products and the average rating for each?"
PROGRAM = (Path(__file__).parent / "shop.ts").read_text()


async def ask(
    model: BaseChatModel, sandbox: Sandbox, question: str, max_turns: int = 10
) -> list[BaseMessage]:
    """The quickstart as a tool-calling loop; returns the conversation, answer last."""
    tool, instructions = create_code_mode(tools=tools, sandbox=sandbox)
    lc_tool = to_langchain(tool)
    llm = model.bind_tools([lc_tool])
    messages: list[BaseMessage] = [
        system_message("You are a helpful shopping assistant.", instructions),
        HumanMessage(question),
    ]
    for _ in range(max_turns):
        reply = await llm.ainvoke(messages)
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            messages.append(await lc_tool.ainvoke(call))
    raise RuntimeError(f"no answer after {max_turns} model turns")


def answer(result: Any) -> str:
    """The final answer a model would write from the code tool's result."""
    if not result["success"]:
        return f"The program failed: {result['error']['message']}"
    lines = [f"- {row['name']}: {row['averageRating']}" for row in result["result"]]
    return "Top 5 products with their average rating:\n" + "\n".join(lines)


class ScriptedChatModel(BaseChatModel):
    """Stands in for an LLM: one `execute_typescript` call, then an answer from its result."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            call = {"name": "execute_typescript", "args": {"code": PROGRAM}, "id": "call_1"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content=answer(json.loads(results[-1].text)))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # the script already knows its one tool


def real_model() -> BaseChatModel:
    chat_openai = importlib.import_module("langchain_openai").ChatOpenAI
    model: BaseChatModel = chat_openai(model=os.environ.get("CODEMODE_MODEL", "gpt-5.4"))
    return model


async def main() -> None:
    model = real_model() if os.environ.get("OPENAI_API_KEY") else ScriptedChatModel()
    async with DenoSandbox() as sandbox:
        messages = await ask(model, sandbox, QUESTION)
    print(messages[-1].text)


if __name__ == "__main__":
    asyncio.run(main())
