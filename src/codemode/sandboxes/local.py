"""LocalSandbox: the program runs with the privileges of the host user, or inside the OS wall."""

from __future__ import annotations

from ._confine import ConfinementSetting
from .deno import DenoSandbox

__all__ = ["LocalSandbox"]


class LocalSandbox(DenoSandbox):
    """Runs programs in Deno with every permission granted: the program can read and write
    files, use the network, read the environment and start processes as you.

    Use it only for trusted code or local development, as the spec's ``LocalSandbox``. Model
    output is untrusted (a prompt injection can write it): use ``DenoSandbox`` for agents.
    Timeouts, limits and the tool bridge behave exactly as in ``DenoSandbox``.

    ``confinement`` puts it behind the OS wall alone: ``LocalSandbox(confinement=Confinement(
    write=["./workspace"]))`` gives a program Deno's whole API, but the operating system lets it
    reach that one folder (plus a scratch directory), no network, no process and none of the
    host's environment variables.
    """

    _host_privileges = True

    def __init__(self, *, confinement: ConfinementSetting = None, **options: int) -> None:
        super().__init__(confinement=confinement, **options)

    def __repr__(self) -> str:
        if self.confinement is None:
            return "LocalSandbox()"
        return f"LocalSandbox(confinement={self.confinement!r})"
