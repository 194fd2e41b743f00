"""Find tools named on a command line: ``package.module:attr`` or ``path/to/file.py[:attr]``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._tools import Tool

__all__ = ["ToolsSpecError", "load_tools"]

DEFAULT_ATTRIBUTE = "tools"


class ToolsSpecError(ValueError):
    """A ``--tools`` value that does not name tools; the message says what to change."""


def _load_module(target: str) -> Any:
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ToolsSpecError(f"--tools {target}: no such file")
        name = f"codemode_user_tools_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ToolsSpecError(f"--tools {target}: cannot import this file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise ToolsSpecError(f"--tools {target}: cannot import module ({exc})") from exc


def load_tools(spec: str) -> dict[str, Tool]:
    """The tools that ``spec`` names, keyed as the program will call them."""
    target, _, attribute = spec.partition(":")
    if spec.count(":") > 1 or not target:
        raise ToolsSpecError(f"--tools {spec}: expected MODULE[:ATTR] or FILE.py[:ATTR]")
    module = _load_module(target)
    attribute = attribute or DEFAULT_ATTRIBUTE
    if not hasattr(module, attribute):
        raise ToolsSpecError(f"--tools {spec}: {target} has no attribute {attribute!r}")
    value = getattr(module, attribute)
    if callable(value) and not isinstance(value, Tool):
        value = value()
    if isinstance(value, Tool):
        return {value.id: value}
    if isinstance(value, Mapping) and all(isinstance(t, Tool) for t in value.values()):
        return dict(value)
    if isinstance(value, Sequence) and all(isinstance(t, Tool) for t in value):
        return {t.id: t for t in value}
    raise ToolsSpecError(
        f"--tools {spec}: {attribute} is a {type(value).__name__}, expected a Tool, a list of "
        "Tools or a dict of name -> Tool"
    )
