"""The ``servers.json`` that MCP clients share: ``{"mcpServers": {name: server}}``.

Parsing lives apart from the client and the server (which the package imports lazily), so that
the command line can reject a bad config (exit code 2, naming the file and the key) without
importing the MCP SDK. Keys this module does
not know (``autoApprove``, ``timeout``, ...) are ignored, so people can point codemode at the
config their other clients already read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "HttpServerConfig",
    "McpConfigError",
    "McpServerConfig",
    "StdioServerConfig",
    "load_mcp_config",
    "parse_mcp_config",
]


class McpConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class StdioServerConfig:
    """A server started as a subprocess and spoken to over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


@dataclass(frozen=True)
class HttpServerConfig:
    """A server already running somewhere, reached over streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


McpServerConfig = StdioServerConfig | HttpServerConfig

_STDIO_TYPES = {"stdio"}
_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamableHttp"}


def load_mcp_config(path: str | os.PathLike[str]) -> list[McpServerConfig]:
    """Read and check a ``servers.json``; raises ``McpConfigError`` naming the file and key."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"{source}: cannot read the file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_mcp_config(data, source=source)


def parse_mcp_config(data: Any, *, source: str = "<config>") -> list[McpServerConfig]:
    """Check already-decoded config data; ``source`` names it in error messages."""
    if not isinstance(data, dict):
        raise McpConfigError(
            f'{source}: expected a JSON object like {{"mcpServers": {{...}}}}, '
            f"got {_json_type(data)}"
        )
    if "mcpServers" not in data:
        raise McpConfigError(
            f'{source}: mcpServers is missing (expected {{"mcpServers": {{"<name>": '
            '{"command": "...", "args": [...]} or {"url": "..."}}})'
        )
    servers = data["mcpServers"]
    if not isinstance(servers, dict):
        raise McpConfigError(
            f"{source}: mcpServers must be an object of server name -> server, "
            f"got {_json_type(servers)}"
        )
    parsed = [
        _parse_server(name, entry, source)
        for name, entry in servers.items()
        if not (isinstance(entry, dict) and entry.get("disabled") is True)
    ]
    if not parsed:
        raise McpConfigError(f"{source}: mcpServers lists no (enabled) servers")
    return parsed


def _parse_server(name: str, entry: Any, source: str) -> McpServerConfig:
    key = f"mcpServers.{name}"
    if not name.strip():
        raise McpConfigError(f"{source}: mcpServers has a server with an empty name")
    if not isinstance(entry, dict):
        raise McpConfigError(f"{source}: {key} must be an object, got {_json_type(entry)}")
    kind = entry.get("type")
    if kind is not None and not isinstance(kind, str):
        raise McpConfigError(f"{source}: {key}.type must be a string, got {_json_type(kind)}")
    if kind == "sse":
        raise McpConfigError(
            f"{source}: {key}.type is sse, which codemode does not support; "
            "use a server's streamable HTTP endpoint (type http)"
        )
    if kind is not None and kind not in _STDIO_TYPES | _HTTP_TYPES:
        raise McpConfigError(f'{source}: {key}.type must be "stdio" or "http", got {kind!r}')
    has_command, has_url = "command" in entry, "url" in entry
    if has_command and has_url:
        raise McpConfigError(f"{source}: {key} has both command and url; keep one")
    if kind in _STDIO_TYPES and not has_command:
        raise McpConfigError(f"{source}: {key}.command is missing (type is stdio)")
    if kind in _HTTP_TYPES and not has_url:
        raise McpConfigError(f"{source}: {key}.url is missing (type is {kind})")
    if has_command:
        return StdioServerConfig(
            name=name,
            command=_non_empty_string(entry["command"], f"{key}.command", source),
            args=tuple(_strings(entry.get("args", []), f"{key}.args", source)),
            env=_string_map(entry.get("env", {}), f"{key}.env", source),
            cwd=_optional_string(entry.get("cwd"), f"{key}.cwd", source),
        )
    if has_url:
        url = _non_empty_string(entry["url"], f"{key}.url", source)
        if not url.startswith(("http://", "https://")):
            raise McpConfigError(f"{source}: {key}.url must start with http:// or https://")
        return HttpServerConfig(
            name=name,
            url=url,
            headers=_string_map(entry.get("headers", {}), f"{key}.headers", source),
        )
    raise McpConfigError(
        f"{source}: {key} needs a command (a server started over stdio) or a url "
        "(a streamable HTTP server)"
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _non_empty_string(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str):
        raise McpConfigError(f"{source}: {key} must be a string, got {_json_type(value)}")
    if not value.strip():
        raise McpConfigError(f"{source}: {key} must not be empty")
    return value


def _optional_string(value: Any, key: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise McpConfigError(f"{source}: {key} must be a string, got {_json_type(value)}")
    return value


def _strings(value: Any, key: str, source: str) -> list[str]:
    if not isinstance(value, list):
        raise McpConfigError(
            f"{source}: {key} must be an array of strings, got {_json_type(value)}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise McpConfigError(
                f"{source}: {key}[{index}] must be a string, got {_json_type(item)}"
            )
    return list(value)


def _string_map(value: Any, key: str, source: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise McpConfigError(
            f"{source}: {key} must be an object of strings, got {_json_type(value)}"
        )
    for name, item in value.items():
        if not isinstance(item, str):
            raise McpConfigError(f"{source}: {key}.{name} must be a string, got {_json_type(item)}")
    return dict(value)
