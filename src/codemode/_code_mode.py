"""create_code_mode: one tool that runs a model-written program against an allow-list of tools."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import difflib
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, Literal, NamedTuple, TypeVar

import pydantic

from ._bridge import Bridge
from ._hints import called_in, undefined_function_hint
from ._model_output import DEFAULT_MAX_MODEL_OUTPUT_CHARS, MIN_MODEL_OUTPUT_CHARS
from ._result import CodeModeError, CodeModeToolResult
from ._tools import Approve, Schema, Tool, ToolContext
from ._tracing import span
from .discovery import (
    DEFAULT_TOKEN_BUDGET,
    Catalog,
    SearchFunction,
    SearchResult,
    estimate_tokens,
)
from .discovery._discovery import DEFAULT_LIMIT
from .discovery._tools import discovery_tool_names, make_discovery_tools, program_handlers
from .durable import Journal, fingerprint, fingerprint_changes
from .durable._journal import paused_error
from .languages import Language, Program, ProgramChecker, TypeCheckerError, get_language
from .sandboxes._base import ExecutionLimits, Job, Sandbox, SandboxError
from .stores._base import (
    Decision,
    ExecutionStore,
    ExecutionStoreError,
    NewExecution,
    new_owner,
    seconds,
)

__all__ = ["CodeMode", "CodeModeTool", "create_code_mode", "create_code_mode_instructions"]

_log = logging.getLogger("codemode")

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_PAUSE_TTL = timedelta(hours=24)
# A pass holds its execution for its timeout plus this: past it, another process may take it
# over (a crashed owner on the same host is seen at once, without waiting).
LEASE_GRACE_S = 30.0

ToolsInput = Mapping[str, Tool] | Sequence[Tool]
DiscoveryMode = bool | Literal["auto"]


class CodeInput(pydantic.BaseModel):
    """The code tool's input."""

    code: str = pydantic.Field(
        description="The program: it calls the external_* functions and returns the result."
    )


def _named_tools(tools: ToolsInput, language: Language) -> dict[str, Tool]:
    """Key each tool by the identifier the program calls it by, refusing collisions."""
    if isinstance(tools, Mapping):
        entries = list(tools.items())
    elif isinstance(tools, Sequence) and not isinstance(tools, str):
        entries = [(t.id, t) for t in tools]
    else:
        raise TypeError("tools must be a mapping of name -> Tool or a sequence of Tools")
    named: dict[str, Tool] = {}
    origin: dict[str, str] = {}
    for key, item in entries:
        if not isinstance(item, Tool):
            raise TypeError(
                f"tools[{key!r}] is {type(item).__name__}, not a Tool; "
                "build it with create_tool(...) or @tool"
            )
        name = language.identifier(key)
        if name in named:
            raise ValueError(
                f"tools {origin[name]!r} and {key!r} both become external_{name}; "
                "rename one of them"
            )
        named[name] = item
        origin[name] = key
    return named


@functools.cache
def _code_tool_schemas() -> tuple[Schema, Schema]:
    """The code tool's input and result schemas, built once per process: pydantic's JSON
    Schema for them costs ~4 ms, which every ``create_code_mode`` (and cold start) paid."""
    return Schema(CodeInput), Schema(CodeModeToolResult)


class CodeModeTool(Tool):
    """The code tool: a ``Tool`` whose input is ``{code}`` and whose result is a
    ``CodeModeToolResult``. It plugs in wherever a tool does."""

    def __init__(
        self,
        *,
        id: str,
        tools: Mapping[str, Tool],
        sandbox: Sandbox,
        timeout_ms: int,
        approve: Approve | None,
        limits: ExecutionLimits,
        instructions: str,
        declarations: str,
        checker: ProgramChecker | None,
        store: ExecutionStore | None = None,
        pause_ttl: float = DEFAULT_PAUSE_TTL.total_seconds(),
        catalog: Catalog | None = None,
        discovery: bool = False,
        max_model_output_chars: int = DEFAULT_MAX_MODEL_OUTPUT_CHARS,
    ) -> None:
        input_schema, result_schema = _code_tool_schemas()
        super().__init__(
            id=id,
            description=instructions,
            input_schema=input_schema,
            output_schema=result_schema,
            execute=self._execute_tool,
        )
        self.tools = dict(tools)
        self.sandbox = sandbox
        self.language = sandbox.language
        self.timeout_ms = timeout_ms
        self.approve = approve
        self.limits = limits
        self.instructions = instructions
        self.declarations = declarations
        self.checker = checker
        self.store = store
        self.pause_ttl = pause_ttl
        self._hints: dict[str, str] = {}  # tool name -> its input hint, made on first use
        # Discovery: a view over ``self.tools`` as it is at each search (never a stale one).
        self.catalog = catalog or Catalog(self.tools, self.language)
        self.catalog.follow(lambda: self.tools)
        #: Whether the instructions hold an outline (programs search) instead of every declaration.
        self.discovery = discovery
        #: The most characters of JSON the model gets from this tool (results, logs, discovery).
        self.max_model_output_chars = max_model_output_chars
        self._discovery_tools: list[Tool] | None = None
        self._handlers: dict[str, Tool] | None = None  # what answers a program's search calls

    async def _execute_tool(self, code: CodeInput, context: ToolContext) -> CodeModeToolResult:
        return await self.execute({"code": code.code}, request_context=context.request_context)

    # Discovery ------------------------------------------------------------------------------
    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> SearchResult:
        """The ``limit`` tools that best fit a task described in ``query``, best first: each
        match has ``name`` (called as ``external_<name>``), ``tool_id``, ``description`` and
        ``score``; ``total`` counts every tool that fits."""
        return self.catalog.search(query, limit)

    async def asearch(self, query: str, limit: int = DEFAULT_LIMIT) -> SearchResult:
        """``search`` that also awaits an async ``search=`` function."""
        return await self.catalog.asearch(query, limit)

    def describe(self, names: Sequence[str]) -> str:
        """The declarations of the tools called ``names`` (as ``search`` returns them), in the
        program's language. Raises ``UnknownToolError`` naming what is not a tool."""
        return self.catalog.describe(names)

    @property
    def discovery_tools(self) -> list[Tool]:
        """``search_tools(query, limit)`` and ``describe_tools(names)`` as plain tools, to give
        a model beside this code tool (the MCP gateway serves them when discovery is on).
        They are named after this tool when its id is not the language's default."""
        if self._discovery_tools is None:
            names = discovery_tool_names(self.id, self.language.default_tool_id)
            self._discovery_tools = make_discovery_tools(
                self.catalog,
                names=names,
                code_tool_id=self.id,
                functions=self.language.discovery_functions,
                max_chars=self.max_model_output_chars,
            )
        return list(self._discovery_tools)

    def _program_tools(self) -> Mapping[str, Tool]:
        """What a program may call: the tools, and with discovery on, the reserved names its
        search and describe calls travel under (the host answers them like tool calls)."""
        functions = self.language.discovery_functions
        if not self.discovery or functions is None:
            return self.tools
        if self._handlers is None:
            self._handlers = program_handlers(self.catalog, functions)
        return {**self.tools, **self._handlers}

    def _checked_declarations(self) -> str:
        if not self.discovery:
            return self.declarations
        extra = self.language.discovery_declarations()
        return self.catalog.declarations().rstrip() + ("\n\n" + extra if extra else "")

    async def execute(
        self,
        input: Mapping[str, Any] | CodeInput,
        *,
        request_context: Mapping[str, Any] | None = None,
    ) -> CodeModeToolResult:
        """Run the program in ``input["code"]`` and return its result; never raises for a
        failure of the program, the sandbox or a tool (that is ``success=False``). The result
        keeps the full value; its ``to_json()`` is bounded by ``max_model_output_chars``."""
        result = await self._run_checked(input, request_context)
        result._max_model_output_chars = self.max_model_output_chars
        return result

    async def _run_checked(
        self, input: Mapping[str, Any] | CodeInput, request_context: Mapping[str, Any] | None
    ) -> CodeModeToolResult:
        try:
            code = CodeInput.model_validate(input).code
        except pydantic.ValidationError as exc:
            return CodeModeToolResult(
                success=False,
                error=CodeModeError(
                    message=f"Tool input validation failed for {self.id}: "
                    f'pass {{"code": "<{self.language.title} program>"}} ('
                    + "; ".join(e["msg"] for e in exc.errors(include_url=False))
                    + ")",
                    name="ValidationError",
                ),
            )
        context = dict(request_context or {})
        with span(
            f"codemode.execute {self.id}",
            {"codemode.id": self.id, "codemode.tools": list(self.tools)},
        ) as current:
            started = time.perf_counter()
            result, calls = await self._run(code, context)
            if current is not None:
                current.set_attribute("codemode.success", result.success)
                current.set_attribute("codemode.tool_calls", calls)
                current.set_attribute(
                    "codemode.duration_ms", (time.perf_counter() - started) * 1000
                )
                if result.error is not None:
                    current.set_attribute("codemode.error.name", result.error.name or "Error")
        return result

    async def _run(
        self, code: str, request_context: Mapping[str, Any]
    ) -> tuple[CodeModeToolResult, int]:
        if self.checker is not None:
            failure = await self._typecheck(code)
            if failure is not None:
                return failure, 0
        program = self.language.prepare(code)
        if self.store is not None:
            return await self._start_durable(code, program, request_context)
        tools = self._program_tools()
        job = Job(
            program.source,
            program.line_offset,
            tuple(tools),
            self.limits,
            last_line=program.last_line,
        )
        bridge = Bridge(
            tools,
            approve=self.approve,
            request_context=request_context,
            code_mode_id=self.id,
            input_hint=self._input_hint,
        )
        return await self._drive(job, bridge, code), bridge.tool_calls

    async def _drive(self, job: Job, bridge: Bridge, code: str) -> CodeModeToolResult:
        """Run ``job`` in the sandbox to its result, with the timeout; no tool call outlives it."""
        unawaited: list[str] = []
        try:
            try:
                async with asyncio.timeout(self.timeout_ms / 1000):
                    outcome = await self.sandbox.execute(job, bridge)
            finally:
                unawaited = await bridge.aclose()
        except TimeoutError:
            return self._failed(
                bridge,
                "TimeoutError",
                f"The program did not finish within the timeout of {self.timeout_ms} ms; "
                "make it do less work or run independent calls in parallel with "
                f"{self.language.parallel_calls}.",
            )
        except SandboxError as exc:
            return self._failed(bridge, exc.name, exc.message)
        if unawaited and outcome.ok:
            # Fire-and-forget calls: the program returned while they ran, so they were
            # cancelled; the model would otherwise believe they happened.
            bridge.log(self._unawaited_note(unawaited))
        if not outcome.ok:
            error = outcome.error and self._with_hint(outcome.error, code)
            return CodeModeToolResult(success=False, logs=bridge.logs, error=error)
        if outcome.result_json is None:  # the program returned nothing: no result at all
            return CodeModeToolResult(success=True, logs=bridge.logs)
        try:
            result = _strict_json(outcome.result_json)
        except ValueError:  # the result text comes from the sandbox: a program can forge it
            return self._failed(
                bridge, "ProtocolError", "The sandbox returned a result that is not valid JSON."
            )
        return CodeModeToolResult(success=True, result=result, logs=bridge.logs)

    # -- durable executions (with a store) ------------------------------------------------------
    def _lease(self) -> float:
        return self.timeout_ms / 1000 + LEASE_GRACE_S

    async def _start_durable(
        self, code: str, program: Program, request_context: Mapping[str, Any]
    ) -> tuple[CodeModeToolResult, int]:
        assert self.store is not None
        execution_id = uuid.uuid4().hex
        owner = new_owner()
        execution = NewExecution(
            execution_id=execution_id,
            code_mode_id=self.id,
            code=code,
            fingerprint=fingerprint(self.id, program, self.tools),
            pause_ttl=self.pause_ttl,
        )
        try:
            await self.store.create(execution, owner=owner, lease=self._lease())
        except Exception as exc:
            _log.warning("could not record a new execution in %r", self.store, exc_info=True)
            return _refused(None, "ExecutionStoreError", f"The execution store failed: {exc}"), 0
        journal = self._journal(execution_id, owner, None)
        return await self._run_pass(code, program, journal, request_context)

    def _journal(self, execution_id: str, owner: str, state: Any) -> Journal:
        assert self.store is not None
        return Journal(
            store=self.store,
            execution_id=execution_id,
            owner=owner,
            tools=self._program_tools(),
            max_concurrent_calls=self.limits.max_concurrent_tool_calls,
            state=state,
        )

    async def _run_pass(
        self, code: str, program: Program, journal: Journal, request_context: Mapping[str, Any]
    ) -> tuple[CodeModeToolResult, int]:
        """One pass of a durable execution: replay what was recorded, go live, and end
        completed, failed or paused, as the store records it."""
        tools = self._program_tools()
        job = Job(
            program.source,
            program.line_offset,
            tuple(tools),
            self.limits,
            last_line=program.last_line,
            durable=journal.replay_run,
        )
        bridge = Bridge(
            tools,
            approve=self.approve,
            request_context=request_context,
            code_mode_id=self.id,
            input_hint=self._input_hint,
            journal=journal,
        )
        outcome = await self._drive(job, bridge, code)
        journal.detach()  # the sandbox is done with this execution: no more probes or stops
        result = self._pass_result(outcome, journal, bridge)
        status: Literal["paused", "completed", "failed"] = (
            "paused" if result.status == "paused" else "completed" if result.success else "failed"
        )
        try:
            await journal.finish(status, result.to_json())
        except Exception as exc:
            _log.warning("could not record the end of execution %s", journal.execution_id)
            if status == "paused":  # not recorded as paused: it could not be resumed
                name = getattr(exc, "name", "ExecutionStoreError")
                return _refused(
                    journal.execution_id,
                    name if isinstance(name, str) else "ExecutionStoreError",
                    f"The program paused, but the pause could not be recorded ({exc}).",
                ), bridge.tool_calls
        return result, bridge.tool_calls

    def _pass_result(
        self, result: CodeModeToolResult, journal: Journal, bridge: Bridge
    ) -> CodeModeToolResult:
        execution_id = journal.execution_id
        if journal.failure is not None:
            return CodeModeToolResult(
                success=False, logs=bridge.logs, error=journal.failure, execution_id=execution_id
            )
        if journal.paused:
            return CodeModeToolResult(
                success=False,
                status="paused",
                logs=bridge.logs,
                error=paused_error(execution_id, journal),
                execution_id=execution_id,
                pending=journal.pending(),
            )
        if result.success and not journal.replay_complete:
            result = CodeModeToolResult(
                success=False, logs=bridge.logs, error=journal.unreached_error()
            )
        waiting = journal.pending()
        if result.error is not None and result.error.name == "TimeoutError" and waiting:
            result.error.message += (
                f" {len(waiting)} call(s) were waiting for a decision, but the program never "
                "became idle to pause (a timer or interval was still pending)."
            )
        return result.model_copy(update={"execution_id": execution_id})

    async def resume(
        self,
        execution_id: str,
        decisions: Mapping[str, Decision] | None = None,
        *,
        request_context: Mapping[str, Any] | None = None,
    ) -> CodeModeToolResult:
        """Continue a paused execution: apply ``decisions`` (``{call_id: True | False |
        "reason"}``, checked and applied atomically), run the program again with every recorded
        outcome replayed (no recorded call runs twice), and return its result: completed,
        failed, or paused again on calls still undecided. An execution that is not paused
        (already resumed, running, expired, unknown) or whose program or tools changed gets a
        failed result and nothing runs. Never raises for those; raises ``TypeError`` for
        arguments of the wrong type."""
        if self.store is None:
            raise RuntimeError(
                "resume() needs a store: create the code tool with "
                "create_code_mode(..., store=SqliteStore(path))"
            )
        if not isinstance(execution_id, str):
            raise TypeError(f"execution_id must be a str, got {type(execution_id).__name__}")
        if decisions is not None and not isinstance(decisions, Mapping):
            raise TypeError(
                "decisions must be a mapping of call_id -> True | False | reason, "
                f"got {type(decisions).__name__}"
            )
        with span(
            f"codemode.resume {self.id}",
            {"codemode.id": self.id, "codemode.execution_id": execution_id},
        ) as current:
            result, calls = await self._resume(
                execution_id, dict(decisions or {}), dict(request_context or {})
            )
            if current is not None:
                current.set_attribute("codemode.status", result.status)
                current.set_attribute("codemode.tool_calls", calls)
        return result

    async def _resume(
        self,
        execution_id: str,
        decisions: dict[str, Decision],
        request_context: Mapping[str, Any],
    ) -> tuple[CodeModeToolResult, int]:
        assert self.store is not None
        try:
            stored = await self.store.get(execution_id)
            if stored is not None and stored.status in ("paused", "running"):
                program = self.language.prepare(stored.code)
                changes = fingerprint_changes(
                    stored.fingerprint, fingerprint(self.id, program, self.tools)
                )
                if changes:
                    return _refused(
                        execution_id,
                        "ProgramChangedError",
                        f"Execution {execution_id} cannot resume: {'; '.join(changes)}. A resume "
                        "runs the recorded program again against the same tools, so nothing "
                        "ran. Resume it with the code tool it paused in, or start a new "
                        "execution.",
                    ), 0
            owner = new_owner()
            state = await self.store.claim(
                execution_id, owner=owner, lease=self._lease(), decisions=decisions
            )
        except ExecutionStoreError as exc:
            return _refused(execution_id, exc.name, exc.message), 0
        except Exception as exc:  # the store itself failed (a lost database, a full disk)
            _log.warning("could not resume %s from %r", execution_id, self.store, exc_info=True)
            return _refused(
                execution_id, "ExecutionStoreError", f"The execution store failed: {exc}"
            ), 0
        program = self.language.prepare(state.code)
        journal = self._journal(execution_id, owner, state)
        return await self._run_pass(state.code, program, journal, request_context)

    def resume_sync(
        self,
        execution_id: str,
        decisions: Mapping[str, Decision] | None = None,
        *,
        request_context: Mapping[str, Any] | None = None,
    ) -> CodeModeToolResult:
        """``resume`` for callers without an event loop."""
        return _background_loop().run(
            self.resume(execution_id, decisions, request_context=request_context)
        )

    def _input_hint(self, name: str) -> str:
        hint = self._hints.get(name)
        if hint is None:
            tool = self.tools.get(name)
            if tool is None:  # a program's search or describe call (a reserved name)
                return f"{self._program_tools()[name].id} as your instructions declare it"
            hint = self._hints[name] = self.language.input_hint(name, tool)
        return hint

    def _with_hint(self, error: CodeModeError, code: str) -> CodeModeError:
        """A call to a function that does not exist gets the names that do."""
        missing = self.language.undefined_name(error.name or "", error.message)
        if missing is None or not called_in(code, missing, error.line):
            return error
        hint = undefined_function_hint(missing, [f"external_{name}" for name in self.tools])
        functions = self.language.discovery_functions
        if self.discovery and functions is not None:  # an outlined catalog: search, not guess
            hint += f" Find the one you need with {functions[0]}."
        return error.model_copy(update={"message": f"{error.message}. {hint}"})

    async def _typecheck(self, code: str) -> CodeModeToolResult | None:
        """A TypeCheckError result, or None to run the program. A broken checker does not
        block programs: it is logged, and the program runs unchecked."""
        assert self.checker is not None
        try:
            failure = await self.checker.check(
                self.language.checkable(code), self._checked_declarations()
            )
        except TypeCheckerError as exc:
            _log.warning("type check skipped for %s: %s", self.id, exc)
            return None
        if failure is None:
            return None
        return CodeModeToolResult(
            success=False,
            error=CodeModeError(message=failure.message, name="TypeCheckError", line=failure.line),
        )

    def _unawaited_note(self, names: list[str]) -> str:
        calls = ", ".join(dict.fromkeys(f"external_{name}" for name in names))
        return (
            f"[codemode] {len(names)} tool call(s) had not finished when the program returned "
            f"and were cancelled: {calls}. Await every call before returning (several at once "
            f"with {self.language.parallel_calls}), or they may not happen."
        )

    @staticmethod
    def _failed(bridge: Bridge, name: str, message: str) -> CodeModeToolResult:
        return CodeModeToolResult(
            success=False, logs=bridge.logs, error=CodeModeError(message=message, name=name)
        )

    def execute_sync(
        self,
        input: Mapping[str, Any] | CodeInput,
        *,
        request_context: Mapping[str, Any] | None = None,
    ) -> CodeModeToolResult:
        """``execute`` for callers without an event loop (runs on a background loop that keeps
        the sandbox's processes warm between calls)."""
        return _background_loop().run(self.execute(input, request_context=request_context))


def _refused(execution_id: str | None, name: str, message: str) -> CodeModeToolResult:
    return CodeModeToolResult(
        success=False, error=CodeModeError(name=name, message=message), execution_id=execution_id
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> Any:
    """Parse JSON text as the spec defines it (no NaN or Infinity)."""
    return json.loads(text, parse_constant=_reject_constant)


T = TypeVar("T")


class _BackgroundLoop:
    """One event loop in a daemon thread, shared by every synchronous caller."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="codemode-loop", daemon=True
        )
        self._thread.start()
        atexit.register(self._shut_down)

    def _shut_down(self) -> None:
        """At interpreter exit, close what lives on this loop (sandbox pools close with their
        loop's async generators), so a script that never closed its sandbox exits quietly."""
        if self.loop.is_closed() or not self.loop.is_running():
            return
        done = asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop)
        with contextlib.suppress(Exception):
            done.result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "execute_sync() was called inside a running event loop; "
                "use `await tool.execute(...)`"
            )
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()


_LOOP: _BackgroundLoop | None = None
_LOOP_LOCK = threading.Lock()


def _background_loop() -> _BackgroundLoop:
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = _BackgroundLoop()
        return _LOOP


class CodeMode(NamedTuple):
    """What ``create_code_mode`` returns; unpacks as ``tool, instructions``."""

    tool: CodeModeTool
    instructions: str


def create_code_mode_instructions(
    *,
    tools: ToolsInput,
    id: str | None = None,
    timeout: int = DEFAULT_TIMEOUT_MS,
    language: str | Language = "typescript",
    discovery: DiscoveryMode = "auto",
    pinned: Sequence[str] = (),
    discovery_token_budget: int = DEFAULT_TOKEN_BUDGET,
) -> str:
    """The instructions a code tool gives the model: the usage contract and a typed
    ``external_*`` declaration per tool, for programs in ``language``; or, with discovery on,
    an outline of the catalog and the pinned tools' declarations (see ``create_code_mode``)."""
    return plan_instructions(
        tools=tools,
        id=id,
        timeout=timeout,
        language=language,
        discovery=discovery,
        pinned=pinned,
        discovery_token_budget=discovery_token_budget,
    ).instructions


def plan_instructions(
    *,
    tools: ToolsInput,
    id: str | None = None,
    timeout: int = DEFAULT_TIMEOUT_MS,
    language: str | Language = "typescript",
    discovery: DiscoveryMode = "auto",
    pinned: Sequence[str] = (),
    discovery_token_budget: int = DEFAULT_TOKEN_BUDGET,
) -> InstructionsPlan:
    """``create_code_mode_instructions`` with what decided them (``codemode instructions``)."""
    lang = get_language(language)
    named = _named_tools(tools, lang)
    return _plan_instructions(
        named,
        lang,
        Catalog(named, lang),
        id=id or lang.default_tool_id,
        timeout_ms=timeout,
        discovery=discovery,
        pinned=pinned,
        token_budget=discovery_token_budget,
    )


class InstructionsPlan(NamedTuple):
    """The instructions chosen for a catalog, and why: the full declarations' estimated size
    against the budget (what ``codemode instructions`` reports)."""

    instructions: str
    declarations: str  # every tool's declarations, when the instructions hold them
    discovery: bool
    tokens: int | None  # estimated tokens of the full instructions, when they are used
    token_budget: int


def _plan_instructions(
    named: dict[str, Tool],
    language: Language,
    catalog: Catalog,
    *,
    id: str,
    timeout_ms: int,
    discovery: DiscoveryMode,
    pinned: Sequence[str],
    token_budget: int,
) -> InstructionsPlan:
    """Full declarations, or an outline when ``discovery`` says so ("auto": when the full
    instructions would pass ``token_budget`` estimated tokens)."""
    if discovery not in (True, False, "auto"):
        raise ValueError(f'discovery must be "auto", True or False, got {discovery!r}')
    if not isinstance(token_budget, int) or isinstance(token_budget, bool) or token_budget < 1:
        raise ValueError(f"discovery_token_budget must be a positive int, got {token_budget!r}")
    if isinstance(pinned, str):
        raise TypeError("pinned must be a list of tool names, not a string")
    supported = language.discovery_functions is not None
    if discovery is True and not supported:
        raise ValueError(
            f"{language.title} programs cannot search the catalog: use discovery=False"
        )
    pinned_names = _pinned_names(catalog, pinned)
    use_discovery = discovery is True or (
        discovery == "auto"
        and supported
        and _over_budget(named, language, id=id, timeout_ms=timeout_ms, token_budget=token_budget)
    )
    if not use_discovery:
        declarations = language.render_declarations(named)
        full = language.render_instructions(declarations, id=id, timeout_ms=timeout_ms)
        return InstructionsPlan(full, declarations, False, estimate_tokens(full), token_budget)
    instructions = language.render_discovery_instructions(
        id=id,
        timeout_ms=timeout_ms,
        outline=catalog.outline(),
        pinned_declarations=catalog.describe(pinned_names) if pinned_names else "",
        discovery_tools=discovery_tool_names(id, language.default_tool_id),
    )
    return InstructionsPlan(instructions, "", True, None, token_budget)


def _over_budget(
    named: Mapping[str, Tool], language: Language, *, id: str, timeout_ms: int, token_budget: int
) -> bool:
    """Whether the full instructions would pass ``token_budget`` (estimated): tool by tool,
    stopping as soon as they do, so a catalog of thousands is not rendered to find out."""
    total = estimate_tokens(language.render_instructions("", id=id, timeout_ms=timeout_ms))
    for name, tool in named.items():
        total += estimate_tokens(language.render_declarations({name: tool})) + 1
        if total > token_budget:
            return True
    return False


def _pinned_names(catalog: Catalog, pinned: Sequence[str]) -> list[str]:
    """The catalog names of ``pinned`` (tool keys, ids or names), refusing unknown ones."""
    names: list[str] = []
    unknown: list[str] = []
    for item in pinned:
        name = catalog.resolve(item) if isinstance(item, str) else None
        if name is None:
            unknown.append(repr(item))
        elif name not in names:
            names.append(name)
    if unknown:
        known = [entry.name for entry in catalog.entries]
        hints = []
        for item in unknown:
            close = difflib.get_close_matches(item.strip("'\""), known, n=3)
            hints.append(item + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise ValueError(f"pinned names no tool: {'; '.join(hints)}")
    return names


def create_code_mode(
    *,
    tools: ToolsInput,
    sandbox: Sandbox | None = None,
    timeout: int = DEFAULT_TIMEOUT_MS,
    id: str | None = None,
    approve: Approve | None = None,
    max_tool_calls: int = ExecutionLimits.max_tool_calls,
    max_concurrent_tool_calls: int = ExecutionLimits.max_concurrent_tool_calls,
    max_log_bytes: int = ExecutionLimits.max_log_bytes,
    max_result_bytes: int = ExecutionLimits.max_result_bytes,
    max_workers: int = ExecutionLimits.max_workers,
    typecheck: bool | ProgramChecker = False,
    store: ExecutionStore | None = None,
    pause_ttl: timedelta | float = DEFAULT_PAUSE_TTL,
    discovery: DiscoveryMode = "auto",
    pinned: Sequence[str] = (),
    search: SearchFunction | None = None,
    discovery_token_budget: int = DEFAULT_TOKEN_BUDGET,
    max_model_output_chars: int = DEFAULT_MAX_MODEL_OUTPUT_CHARS,
) -> CodeMode:
    """Create a code tool over ``tools`` (only these may be called) and its instructions.

    The program language is the sandbox's (``DenoSandbox``: TypeScript); ``id`` defaults to
    the language's (``execute_typescript``). ``timeout`` is in milliseconds, as in the spec.
    ``approve`` decides calls to tools created with ``require_approval=True``; without it they
    are denied. ``max_workers`` is how many
    nested ``Worker``s a program may start (none by default). ``typecheck=True`` checks each
    program against the declarations before it runs (a warm checker: ~15 ms a check after a
    ~1 s start); a type error is returned as ``TypeCheckError`` and the program does not run.

    Large catalogs: with ``discovery`` on, the instructions hold an outline of the catalog and
    the declarations of the ``pinned`` tools instead of every declaration, and programs find
    the rest with ``codemode.searchTools``/``codemode.describeTools``; every tool stays
    callable. ``"auto"`` (the default) switches it on when the full instructions would pass
    ``discovery_token_budget`` estimated tokens. ``search`` replaces the lexical ranking:
    ``search(query, tools) -> ranked names`` (sync or async). The model sees at most
    ``max_model_output_chars`` characters of a result (cut structurally, with markers); the
    Python result keeps the full value.

    ``store`` (e.g. ``SqliteStore(path)``) makes executions durable: every tool call is
    recorded, ``approve`` may answer None to defer a call, and a program whose calls wait for a
    person pauses (``status="paused"``) until ``tool.resume(execution_id, decisions)``, in this
    process or another; calls already made are replayed, never repeated. A paused execution
    expires after ``pause_ttl`` (a timedelta or seconds).
    """
    if sandbox is None:
        raise ValueError(
            "create_code_mode needs a sandbox, because it runs model-written code: pass "
            "sandbox=DenoSandbox() (isolated, recommended) or sandbox=LocalSandbox() "
            "(host privileges, trusted code only)"
        )
    if not isinstance(sandbox, Sandbox):
        raise TypeError(f"sandbox must be a Sandbox, got {type(sandbox).__name__}")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout is in milliseconds and must be a positive int, got {timeout!r}")
    language = sandbox.language
    if id is None:
        id = language.default_tool_id
    if not id or not isinstance(id, str):
        raise ValueError("id must be a non-empty string")
    for name, value in [
        ("max_tool_calls", max_tool_calls),
        ("max_concurrent_tool_calls", max_concurrent_tool_calls),
        ("max_log_bytes", max_log_bytes),
        ("max_result_bytes", max_result_bytes),
    ]:
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if max_workers < 0:
        raise ValueError(f"max_workers must be at least 0, got {max_workers}")
    if (
        not isinstance(max_model_output_chars, int)
        or isinstance(max_model_output_chars, bool)
        or max_model_output_chars < MIN_MODEL_OUTPUT_CHARS
    ):
        raise ValueError(
            f"max_model_output_chars must be an int of at least {MIN_MODEL_OUTPUT_CHARS}, "
            f"got {max_model_output_chars!r}"
        )
    if store is not None:
        if not isinstance(store, ExecutionStore):
            raise TypeError(
                "store must be an ExecutionStore (e.g. SqliteStore(path)), "
                f"got {type(store).__name__}"
            )
        if not sandbox.supports_durable:
            raise ValueError(
                f"{type(sandbox).__name__} cannot pause and resume programs; use store= with "
                "DenoSandbox, MontySandbox or LocalSandbox"
            )
    ttl = seconds(pause_ttl, "pause_ttl")
    named = _named_tools(tools, language)
    catalog = Catalog(named, language, search=search)
    plan = _plan_instructions(
        named,
        language,
        catalog,
        id=id,
        timeout_ms=timeout,
        discovery=discovery,
        pinned=pinned,
        token_budget=discovery_token_budget,
    )
    checker: ProgramChecker | None
    if isinstance(typecheck, bool):
        checker = language.shared_checker() if typecheck else None
    else:
        checker = typecheck
    code_tool = CodeModeTool(
        id=id,
        tools=named,
        sandbox=sandbox,
        timeout_ms=timeout,
        approve=approve,
        limits=ExecutionLimits(
            max_tool_calls=max_tool_calls,
            max_concurrent_tool_calls=max_concurrent_tool_calls,
            max_log_bytes=max_log_bytes,
            max_result_bytes=max_result_bytes,
            max_workers=max_workers,
        ),
        instructions=plan.instructions,
        declarations=plan.declarations,
        checker=checker,
        store=store,
        pause_ttl=ttl,
        catalog=catalog,
        discovery=plan.discovery,
        max_model_output_chars=max_model_output_chars,
    )
    return CodeMode(code_tool, plan.instructions)
