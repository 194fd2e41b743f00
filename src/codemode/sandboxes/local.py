"""LocalSandbox: the program runs with the privileges of the host user."""

from __future__ import annotations

from .deno import DenoSandbox

__all__ = ["LocalSandbox"]


class LocalSandbox(DenoSandbox):
    """Runs programs in Deno with every permission granted: the program can read and write
    files, use the network, read the environment and start processes as you.

    Use it only for trusted code or local development, as the spec's ``LocalSandbox``. Model
    output is untrusted (a prompt injection can write it): use ``DenoSandbox`` for agents.
    Timeouts, limits and the tool bridge behave exactly as in ``DenoSandbox``.
    """

    _host_privileges = True

    def __repr__(self) -> str:
        return "LocalSandbox()"
