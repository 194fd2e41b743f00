"""Where programs run: the ``Sandbox`` protocol and its runtimes."""

from ._base import ExecutionHost, ExecutionLimits, Job, Outcome, Sandbox, SandboxError, ToolReply
from ._confine import Confinement, ConfinementReport
from .deno import DenoSandbox
from .local import LocalSandbox
from .monty import MontySandbox

__all__ = [
    "Confinement",
    "ConfinementReport",
    "DenoSandbox",
    "ExecutionHost",
    "ExecutionLimits",
    "Job",
    "LocalSandbox",
    "MontySandbox",
    "Outcome",
    "Sandbox",
    "SandboxError",
    "ToolReply",
]
