"""codemode: give an agent one tool that runs a model-written program (TypeScript in Deno, or
Python in Monty) in a sandbox, calling your tools as ``external_*`` functions."""

from ._code_mode import CodeMode, CodeModeTool, create_code_mode, create_code_mode_instructions
from ._result import CodeModeError, CodeModeToolResult, PendingCall
from ._tools import Schema, Tool, ToolCall, ToolContext, ToolValidationError, create_tool, tool
from .sandboxes import (
    Confinement,
    ConfinementReport,
    DenoSandbox,
    ExecutionLimits,
    LocalSandbox,
    MontySandbox,
    Sandbox,
    SandboxError,
)

__all__ = [
    "CodeMode",
    "CodeModeError",
    "CodeModeTool",
    "CodeModeToolResult",
    "Confinement",
    "ConfinementReport",
    "DenoSandbox",
    "ExecutionLimits",
    "LocalSandbox",
    "MontySandbox",
    "PendingCall",
    "Sandbox",
    "SandboxError",
    "Schema",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolValidationError",
    "create_code_mode",
    "create_code_mode_instructions",
    "create_tool",
    "tool",
]

__version__ = "0.1.0"
