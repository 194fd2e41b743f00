"""The per-call path between the program and the host: the host's end of the runner's
socket (line framing, queueing, limits), the JSON codec, and what a call carries across
(the caller's context, the line that made a failing call)."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

import pytest

from _helpers import run
from codemode import DenoSandbox, create_code_mode, create_tool
from codemode._json import dumps_line, loads
from codemode.sandboxes import SandboxError
from codemode.sandboxes._channel import RunnerChannel

# -- the JSON codec ----------------------------------------------------------------------------


def test_loads_reads_what_json_stringify_writes() -> None:
    assert loads(b'{"t":"call","c":1,"n":"echo","a":"{\\"v\\":[1,2.5,null]}"}') == {
        "t": "call",
        "c": 1,
        "n": "echo",
        "a": '{"v":[1,2.5,null]}',
    }
    # A lone surrogate, as JSON.stringify writes it: kept (pydantic-core alone refuses it).
    assert loads(b'{"m":"\\ud800"}') == {"m": "\ud800"}
    # Integers past 64 bits stay integers.
    assert loads(b"[100000000000000000000]") == [100000000000000000000]


def test_loads_names_what_is_wrong_with_bad_json() -> None:
    with pytest.raises(json.JSONDecodeError, match=r"^Expecting value: line 1 column 1"):
        loads(b"this is not json")


def test_dumps_line_writes_one_compact_line() -> None:
    assert dumps_line({"t": "ret", "c": 3, "ok": True, "v": {"a": [1, "x"]}}) == (
        b'{"t":"ret","c":3,"ok":true,"v":{"a":[1,"x"]}}\n'
    )
    assert dumps_line({"s": "\ud800"}) == b'{"s":"\\ud800"}\n'  # escaped, as JSON allows
    assert dumps_line({"s": "NaN and -Infinity"}) == b'{"s":"NaN and -Infinity"}\n'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_dumps_line_refuses_what_javascript_cannot_parse(value: float) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        dumps_line({"v": [value]})


# -- the host's end of the socket --------------------------------------------------------------


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def connected(limit: int = 1 << 20) -> tuple[RunnerChannel, Transport]:
    channel = RunnerChannel(limit)
    transport = Transport()
    channel.connection_made(transport)
    return channel, transport


class Listener:
    def __init__(self, channel: RunnerChannel, fail_on: bytes | None = None) -> None:
        self.lines: list[bytes] = []
        self.ends: list[BaseException | None] = []
        self.fail_on = fail_on
        channel.listen(self.on_line, self.ends.append)

    def on_line(self, line: bytes) -> None:
        if line == self.fail_on:
            raise ValueError(f"bad line {line!r}")
        self.lines.append(line)


def test_lines_are_split_however_they_arrive() -> None:
    channel, _ = connected()
    listener = Listener(channel)
    channel.data_received(b'{"a":1}\n{"b"')
    channel.data_received(b":2")
    channel.data_received(b'}\n{"c":3}\n{"d":4}\n')
    assert listener.lines == [b'{"a":1}', b'{"b":2}', b'{"c":3}', b'{"d":4}']


def test_lines_nobody_listens_to_wait_for_read_line() -> None:
    async def scenario() -> list[bytes | None]:
        channel, _ = connected()
        channel.data_received(b'{"t":"ready"}\n{"t":"x"}\n')
        first = await channel.read_line()
        listener = Listener(channel)  # the queued line goes to the listener first
        channel.data_received(b'{"t":"y"}\n')
        channel.stop_listening()
        channel.connection_lost(None)
        return [first, *listener.lines, await channel.read_line()]

    assert asyncio.run(scenario()) == [b'{"t":"ready"}', b'{"t":"x"}', b'{"t":"y"}', None]


def test_a_listener_that_raises_ends_the_channel_with_its_error() -> None:
    channel, transport = connected()
    listener = Listener(channel, fail_on=b"bad")
    channel.data_received(b"good\nbad\nnever\n")
    assert listener.lines == [b"good"]
    assert [str(e) for e in listener.ends] == ["bad line b'bad'"]
    assert transport.closed


def test_the_end_of_the_channel_reaches_the_listener_once() -> None:
    channel, _ = connected()
    listener = Listener(channel)
    channel.connection_lost(None)
    channel.connection_lost(None)
    assert listener.ends == [None]
    late = Listener(channel)  # listening after the end hears it at once
    assert late.ends == [None]


def test_a_line_over_the_limit_ends_the_channel() -> None:
    channel, transport = connected(limit=10)
    listener = Listener(channel)
    channel.data_received(b"0123456")
    channel.data_received(b"789abc")
    assert len(listener.ends) == 1
    error = listener.ends[0]
    assert isinstance(error, SandboxError)
    assert (error.name, error.message) == (
        "MessageTooLargeError",
        "The sandbox sent a message over the size limit of 10 bytes",
    )
    assert transport.closed and listener.lines == []


# -- what a call carries across ----------------------------------------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.fixture
async def sandbox() -> Any:
    async with DenoSandbox(prestart=1) as sandbox:
        yield sandbox


async def test_tools_see_the_callers_context_variables(sandbox: DenoSandbox) -> None:
    seen: list[str] = []

    async def whoami(_: Any) -> str:
        seen.append(REQUEST_ID.get())
        REQUEST_ID.set("changed by the tool")  # stays inside this call
        return REQUEST_ID.get()

    tool = create_code_mode(
        tools=[create_tool(id="whoami", description="", input_schema={}, execute=whoami)],
        sandbox=sandbox,
    ).tool
    REQUEST_ID.set("request 7")
    result = await run(tool, "return [await external_whoami({}), await external_whoami({})]")
    assert result["result"] == ["changed by the tool", "changed by the tool"]
    assert seen == ["request 7", "request 7"]
    assert REQUEST_ID.get() == "request 7"


async def test_a_failing_call_reports_the_program_line_that_made_it(
    sandbox: DenoSandbox,
) -> None:
    def refuse(_: Any) -> None:
        raise PermissionError("no")

    tool = create_code_mode(
        tools=[create_tool(id="refuse", description="", input_schema={}, execute=refuse)],
        sandbox=sandbox,
    ).tool
    direct = await run(tool, "const a = 1\nawait external_refuse({})")
    helper = await run(
        tool, "async function go() {\n  return await external_refuse({})\n}\nawait go()"
    )
    # Passed to a built-in: the call site is one frame further down.
    mapped = await run(tool, "const ids = [1, 2]\n\nawait Promise.all(ids.map(external_refuse))")
    assert [r["error"] for r in (direct, helper, mapped)] == [
        {"name": "PermissionError", "message": "no", "line": 2},
        {"name": "PermissionError", "message": "no", "line": 2},
        {"name": "PermissionError", "message": "no", "line": 3},
    ]


async def test_many_sequential_calls_come_back_in_order(sandbox: DenoSandbox) -> None:
    async def echo(value: Any) -> Any:
        return value

    tool = create_code_mode(
        tools=[create_tool(id="echo", description="", input_schema={}, execute=echo)],
        sandbox=sandbox,
    ).tool
    code = (
        "const out = []\n"
        "for (let i = 0; i < 500; i++) out.push((await external_echo({ i, s: 'é\\u2028' })).i)\n"
        "return out"
    )
    assert (await run(tool, code))["result"] == list(range(500))
