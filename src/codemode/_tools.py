"""Tools: what a program may call, with validation on both sides of the call.

A schema may be a pydantic model class, any type a pydantic ``TypeAdapter`` accepts, or a raw JSON
Schema dict (MCP tools arrive as JSON Schema). Each is normalised into a ``Schema`` that can
validate a value and describe itself as JSON Schema, so the bridge and the declarations never care
which one the tool author chose.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import jsonschema
import jsonschema_rs
import pydantic
import pydantic_core

__all__ = [
    "ApprovalAnswer",
    "Approve",
    "RequireApproval",
    "Schema",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolValidationError",
    "create_tool",
    "tool",
]


class ToolValidationError(Exception):
    """A tool's input or output does not match its schema; the message lists every problem."""

    name = "ValidationError"


_log = logging.getLogger("codemode")


@dataclass(frozen=True)
class ToolContext:
    """What a tool learns about the call besides its input.

    In an execution with a store, ``execution_id`` names the execution and ``idempotency_key``
    (``<execution_id>:<step>``) is the same every time this call is attempted, so a tool that
    talks to an API which deduplicates requests can pass it on.
    """

    request_context: Mapping[str, Any] = field(default_factory=dict)
    tool_id: str = ""
    code_mode_id: str | None = None
    execution_id: str | None = None
    idempotency_key: str | None = None


class Schema:
    """A schema that can validate values and render itself as JSON Schema.

    Everything a call needs is built here, once per tool: a pydantic ``TypeAdapter``, or for
    JSON Schema a compiled validator (``jsonschema-rs``, about 100 times faster than
    ``jsonschema``) that decides, and ``jsonschema`` that words the errors when it says no.
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self._adapter: pydantic.TypeAdapter[Any] | None = None
        self._validator: Any = None
        self._compiled: Any = None
        self.is_model = isinstance(source, type) and issubclass(source, pydantic.BaseModel)
        self.is_json_schema = isinstance(source, Mapping)
        if isinstance(source, Mapping):
            schema = dict(source)
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            if not _meta_valid(schema):
                try:  # jsonschema decides, and words what is wrong
                    cls.check_schema(schema)
                except jsonschema.SchemaError as exc:
                    raise ValueError(f"invalid JSON Schema: {exc.message}") from exc
            self._validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
            self._compiled = _compile(schema)
            self._json: dict[str, Any] = schema
            self._json_out: dict[str, Any] = schema
        else:
            self._adapter = pydantic.TypeAdapter(source)
            self._json = self._adapter.json_schema(mode="validation")
            self._json_out = self._adapter.json_schema(mode="serialization")

    def json_schema(self, mode: typing.Literal["validation", "serialization"]) -> dict[str, Any]:
        """JSON Schema of what the tool accepts (validation) or what it produces (serialization)."""
        return self._json if mode == "validation" else self._json_out

    def validate(self, value: Any, what: str) -> Any:
        """Validate a JSON value; returns the native value (a model instance for model schemas)."""
        if self._adapter is not None:
            try:
                return self._adapter.validate_python(value)
            except pydantic.ValidationError as exc:
                raise ToolValidationError(f"{what}:\n{_format_pydantic_errors(exc)}") from None
        compiled = self._compiled
        if compiled is not None:
            try:
                if compiled.is_valid(value):
                    return value
            except ValueError:  # not JSON data (e.g. a dict with int keys): jsonschema decides
                compiled = None
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"- {_json_path(e.absolute_path)}: {e.message}" for e in errors]
            raise ToolValidationError(f"{what}:\n" + "\n".join(lines))
        if compiled is not None:
            # Only the compiled validator objects (it checks every format, jsonschema only
            # those whose optional libraries are installed): its own words, with paths.
            found = sorted(compiled.iter_errors(value), key=lambda e: list(e.instance_path))
            lines = [f"- {_json_path(e.instance_path)}: {e.message}" for e in found]
            raise ToolValidationError(f"{what}:\n" + "\n".join(lines))
        return value

    def to_json(self, value: Any) -> Any:
        """A validated value as plain JSON data."""
        if self._adapter is not None:
            return self._adapter.dump_python(value, mode="json")
        return value


# The meta-schemas ``jsonschema-rs`` carries (``$schema`` without its trailing "#").
_DIALECTS = frozenset(
    {
        "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    }
)


def _meta_valid(schema: dict[str, Any]) -> bool:
    """Whether ``jsonschema-rs`` finds the schema valid against its meta-schema (~2 µs, where
    ``jsonschema``'s check takes 1-6 ms a schema: seconds for a large MCP catalog). Anything
    else goes to ``jsonschema``'s own check: an unknown ``$schema`` (``jsonschema-rs`` would
    fetch it over the network), and a regular expression (``jsonschema-rs`` does not check the
    meta-schema's "regex" format, which ``jsonschema`` checks with Python's ``re``)."""
    dialect = schema.get("$schema")
    known = isinstance(dialect, str) and dialect.rstrip("#") in _DIALECTS
    if (dialect is not None and not known) or _has_patterns(schema):
        return False
    try:
        return bool(jsonschema_rs.meta.is_valid(schema))
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError, TypeError):
        return False


def _has_patterns(node: Any) -> bool:
    """Whether a ``pattern`` or ``patternProperties`` keyword (or a property so named) is in it."""
    if isinstance(node, Mapping):
        return any(
            key in ("pattern", "patternProperties") or _has_patterns(value)
            for key, value in node.items()
        )
    if isinstance(node, list | tuple):
        return any(_has_patterns(item) for item in node)
    return False


def _compile(schema: dict[str, Any]) -> Any:
    """A ``jsonschema-rs`` validator, or None where it cannot stand in for ``jsonschema``
    (e.g. a ``$ref`` it cannot resolve offline): then ``jsonschema`` alone validates."""
    try:
        return jsonschema_rs.validator_for(schema, validate_formats=True, offline=True)
    except (jsonschema_rs.ValidationError, ValueError):
        return None


def _json_path(path: Any) -> str:
    parts = [str(p) for p in path]
    return "/" + "/".join(parts) if parts else "(root)"


def _format_pydantic_errors(exc: pydantic.ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"- {loc}: {err['msg']}")
    return "\n".join(lines)


ToolExecute = Callable[..., Any]

RequireApproval = bool | Callable[[Any], bool]
"""``True``, ``False``, or a predicate on the validated input (``lambda inp: inp.amount > 100``)."""


class Tool:
    """A function the program can call as ``external_<name>``, validated on the way in and out.

    ``execute`` may be sync (run in a worker thread) or async, and may take a second positional
    parameter that receives the ``ToolContext``.
    """

    #: The group this tool belongs to when a large catalog is outlined and searched, e.g. the
    #: MCP server it comes from (``connect_mcp_servers`` sets it); None lets its name decide.
    group: str | None = None

    def __init__(
        self,
        *,
        id: str,
        description: str,
        input_schema: Any,
        execute: ToolExecute,
        output_schema: Any = None,
        require_approval: RequireApproval = False,
        idempotent: bool = False,
    ) -> None:
        if not isinstance(id, str) or not id:
            raise ValueError("a tool needs a non-empty string id")
        if not callable(execute):
            raise TypeError(f"tool {id!r}: execute must be callable, got {type(execute).__name__}")
        if not isinstance(require_approval, bool) and not callable(require_approval):
            raise TypeError(
                f"tool {id!r}: require_approval must be True, False or a predicate on the "
                f"validated input, got {type(require_approval).__name__}"
            )
        self.id = id
        self.description = description
        self.require_approval = require_approval
        self.idempotent = idempotent
        self._input = input_schema if isinstance(input_schema, Schema) else Schema(input_schema)
        self._output: Schema | None
        if output_schema is None or isinstance(output_schema, Schema):
            self._output = output_schema
        else:
            self._output = Schema(output_schema)
        self._execute = execute
        self._is_async = inspect.iscoroutinefunction(execute) or inspect.iscoroutinefunction(
            getattr(execute, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._wants_context = _takes_second_argument(execute)

    def __repr__(self) -> str:
        return f"Tool(id={self.id!r})"

    @property
    def may_require_approval(self) -> bool:
        """Whether some call of this tool may need approval (always, or when its predicate says)."""
        return self.require_approval is not False

    def needs_approval(self, validated_input: Any) -> bool:
        """Whether this call needs approval. A predicate that raises is taken as a yes: a
        broken rule must not let a gated call through."""
        rule = self.require_approval
        if isinstance(rule, bool):
            return rule
        try:
            return bool(rule(validated_input))
        except Exception:
            _log.warning("require_approval predicate of tool %s failed", self.id, exc_info=True)
            return True

    @property
    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the input the tool accepts."""
        return self._input.json_schema("validation")

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the value the tool returns, if it declares one."""
        return None if self._output is None else self._output.json_schema("serialization")

    def validate_input(self, raw: Any) -> Any:
        """Check raw JSON input; raises ``ToolValidationError`` listing every problem."""
        return self._input.validate(raw, f"Tool input validation failed for {self.id}")

    async def run(self, validated_input: Any, context: ToolContext) -> Any:
        """Run the tool on validated input and return its result as JSON data."""
        args = (validated_input, context) if self._wants_context else (validated_input,)
        if self._is_async:
            value = await self._execute(*args)
        else:
            value = await asyncio.to_thread(self._execute, *args)
            if inspect.isawaitable(value):
                value = await value
        return self.output_to_json(value)

    def output_to_json(self, value: Any) -> Any:
        """Validate a tool's return value against its output schema and make it JSON data."""
        if self._output is not None:
            what = f"Tool output validation failed for {self.id}"
            if self._output.is_json_schema:
                value = _to_jsonable(value, self.id)
            return self._output.to_json(self._output.validate(value, what))
        return _to_jsonable(value, self.id)

    async def execute(self, input: Any, *, request_context: Mapping[str, Any] | None = None) -> Any:
        """Validate, run and validate again: the same path a program's call takes."""
        validated = self.validate_input(input)
        return await self.run(validated, ToolContext(dict(request_context or {}), self.id))

    def to_openai_tool(self) -> dict[str, Any]:
        """This tool as an OpenAI Chat Completions function tool (JSON-ready dict)."""
        from ._tool_formats import openai_tool

        return openai_tool(self)

    def to_anthropic_tool(self) -> dict[str, Any]:
        """This tool as an Anthropic Messages API tool (JSON-ready dict)."""
        from ._tool_formats import anthropic_tool

        return anthropic_tool(self)


def _to_jsonable(value: Any, tool_id: str) -> Any:
    try:
        return pydantic_core.to_jsonable_python(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise ToolValidationError(
            f"Tool output validation failed for {tool_id}: the result is not JSON-serialisable "
            f"({exc})"
        ) from None


def _takes_second_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)


def create_tool(
    *,
    id: str,
    description: str,
    input_schema: Any,
    execute: ToolExecute,
    output_schema: Any = None,
    require_approval: RequireApproval = False,
    idempotent: bool = False,
) -> Tool:
    """Create a tool from schemas and a function (the spec's ``createTool``).

    ``require_approval`` is ``True`` or a predicate on the validated input; ``idempotent=True``
    says running a call twice is harmless, so a call left in doubt by a crash is run again
    instead of waiting for an operator.
    """
    return Tool(
        id=id,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        execute=execute,
        require_approval=require_approval,
        idempotent=idempotent,
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    id: str | None = None,
    description: str | None = None,
    require_approval: RequireApproval = False,
    idempotent: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    id: str | None = None,
    description: str | None = None,
    require_approval: RequireApproval = False,
    idempotent: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Build a tool from a typed function: parameters become the input object, the return
    annotation the output schema, the docstring the description, the name the id.

    A parameter annotated ``ToolContext`` is not part of the input; it receives the context.
    """

    def build(func: Callable[..., Any]) -> Tool:
        return _tool_from_function(
            func,
            id=id,
            description=description,
            require_approval=require_approval,
            idempotent=idempotent,
        )

    return build(fn) if fn is not None else build


def _tool_from_function(
    func: Callable[..., Any],
    *,
    id: str | None,
    description: str | None,
    require_approval: RequireApproval,
    idempotent: bool,
) -> Tool:
    hints = typing.get_type_hints(func, include_extras=True)
    sig = inspect.signature(func)
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for param in sig.parameters.values():
        annotation = hints.get(param.name, Any)
        if annotation is ToolContext:
            context_param = param.name
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"@tool {func.__name__}: *args/**kwargs cannot become a schema")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in func.__name__.split("_")) + "Input"
    input_model = pydantic.create_model(model_name, **fields)
    returns = hints.get("return", None) if "return" in hints else None
    output_schema = None if sig.return_annotation is sig.empty else returns
    if output_schema is None and sig.return_annotation is not sig.empty:
        output_schema = type(None)
    is_async = inspect.iscoroutinefunction(func)

    def call_kwargs(model: pydantic.BaseModel, context: ToolContext) -> dict[str, Any]:
        kwargs = {name: getattr(model, name) for name in fields}
        if context_param is not None:
            kwargs[context_param] = context
        return kwargs

    execute: ToolExecute
    if is_async:

        async def execute_async(model: pydantic.BaseModel, context: ToolContext) -> Any:
            return await func(**call_kwargs(model, context))

        execute = execute_async
    else:

        def execute_sync(model: pydantic.BaseModel, context: ToolContext) -> Any:
            return func(**call_kwargs(model, context))

        execute = execute_sync
    doc = inspect.getdoc(func) or ""
    return Tool(
        id=id or func.__name__,
        description=description if description is not None else doc,
        input_schema=input_model,
        output_schema=output_schema,
        execute=execute,
        require_approval=require_approval,
        idempotent=idempotent,
    )


ApprovalAnswer = bool | str | None
"""``True`` runs the call; ``False`` or a reason string denies it; ``None`` defers it (with a
store the execution pauses until a person decides; without one it is a denial)."""

Approve = Callable[["ToolCall"], ApprovalAnswer | Awaitable[ApprovalAnswer]]


@dataclass(frozen=True)
class ToolCall:
    """One call a program made, as an approval callback sees it. In an execution with a store,
    ``execution_id`` and ``call_id`` name the call as ``resume(decisions=...)`` does."""

    tool_id: str
    input: Any
    request_context: Mapping[str, Any] = field(default_factory=dict)
    execution_id: str | None = None
    call_id: str | None = None
