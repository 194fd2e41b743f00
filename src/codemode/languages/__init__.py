"""Program languages: each is a package behind the ``Language`` protocol."""

from __future__ import annotations

import importlib

from ._base import (
    DeclarationSet,
    Language,
    Program,
    ProgramChecker,
    TypeCheckerError,
    TypeCheckFailure,
)

__all__ = [
    "DeclarationSet",
    "Language",
    "Program",
    "ProgramChecker",
    "TypeCheckFailure",
    "TypeCheckerError",
    "get_language",
    "known_languages",
    "language_for_file",
]

# name -> the module whose ``LANGUAGE`` is that language, imported on first use.
_KNOWN = {
    "typescript": "codemode.languages.typescript",
    "python": "codemode.languages.python",
}


def get_language(name: str | Language) -> Language:
    """The language called ``name`` (a ``Language`` is returned as is)."""
    if isinstance(name, Language):
        return name
    module = _KNOWN.get(name)
    if module is None:
        raise ValueError(f"unknown language {name!r}; known: {', '.join(sorted(_KNOWN))}")
    language: Language = importlib.import_module(module).LANGUAGE
    return language


def known_languages() -> list[str]:
    """The names ``get_language`` accepts."""
    return sorted(_KNOWN)


def language_for_file(name: str) -> Language | None:
    """The language whose programs end like ``name`` (``.py``, ``.ts``), or None."""
    lowered = name.lower()
    for known in _KNOWN:
        language = get_language(known)
        if lowered.endswith(language.file_extensions):
            return language
    return None
