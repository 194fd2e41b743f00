"""The seccomp filter of the OS wall: every decision of the generated classic-BPF program, read
by a small interpreter for both architectures, then the same program installed in a real
process on this kernel, where the C library's own wrappers meet it."""

from __future__ import annotations

import base64
import errno
import json
import platform
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass

import pytest

from codemode.sandboxes._confine import _LAUNCHER
from codemode.sandboxes._seccomp import (
    AARCH64,
    AF_UNIX,
    CLONE_THREAD,
    REFUSED,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    X86_64,
    SeccompArch,
    native_arch,
    seccomp_program,
)

EPERM = RET_ERRNO | errno.EPERM
ENOSYS = RET_ERRNO | errno.ENOSYS
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
AF_INET = 2
# What glibc passes: pthread_create, and fork() (SIGCHLD in the low byte).
THREAD_FLAGS = 0x3D0F00
FORK_FLAGS = 0x01200011


@dataclass(frozen=True)
class Call:
    nr: int
    arch: int
    args: tuple[int, ...] = (0,) * 6


def run_filter(program: bytes, call: Call) -> int:
    """Interpret the instructions the generator emits, as the kernel would."""
    data = struct.pack("=iIQ6Q", call.nr, call.arch, 0, *call.args)
    code = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    accumulator = pc = 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:  # ld [k]
            (accumulator,) = struct.unpack_from("=I", data, k)
            pc += 1
        elif op == 0x06:  # ret k
            return k
        else:
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: accumulator & k}[op]
            pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("arch", [X86_64, AARCH64], ids=lambda a: a.name)
@pytest.mark.parametrize("network", [False, True], ids=["no-network", "network"])
def test_every_decision(arch: SeccompArch, network: bool) -> None:
    program = seccomp_program(arch, network=network)
    assert len(program) % 8 == 0 and len(program) // 8 < 4096  # BPF_MAXINSNS

    def decide(name: str | int, *args: int) -> int:
        nr = arch.numbers[name] if isinstance(name, str) else name
        padded = (*args, *(0,) * (6 - len(args)))
        return run_filter(program, Call(nr, arch.audit_arch, padded))

    refused = [name for name in REFUSED if name in arch.numbers]
    assert {name: decide(name) for name in refused} == dict.fromkeys(refused, EPERM)
    # Every other call passes: read, write, mmap... (numbers 0..499 not named above).
    named = {arch.numbers[n] for n in (*refused, "clone", "clone3", "socket")}
    assert {nr: decide(nr) for nr in range(500) if nr not in named} == {
        nr: RET_ALLOW for nr in range(500) if nr not in named
    }
    # Threads pass; processes and namespaces do not; clone3 sends the C library back to clone.
    assert decide("clone", THREAD_FLAGS) == RET_ALLOW
    assert decide("clone", FORK_FLAGS) == EPERM
    assert decide("clone", THREAD_FLAGS | CLONE_NEWUSER) == EPERM
    assert decide("clone", FORK_FLAGS | CLONE_NEWNET) == EPERM
    assert decide("clone", CLONE_THREAD | (1 << 40)) == RET_ALLOW  # only the low word counts
    assert decide("clone3") == ENOSYS
    # Sockets: unix always; the rest only with the network.
    assert decide("socket", AF_UNIX, 1) == RET_ALLOW
    assert decide("socket", AF_INET, 1) == (RET_ALLOW if network else EPERM)
    assert decide("socket", 16, 3) == (RET_ALLOW if network else EPERM)  # netlink
    # Another ABI's numbers mean other calls: the process dies.
    other = AARCH64 if arch is X86_64 else X86_64
    assert run_filter(program, Call(arch.numbers["ptrace"], other.audit_arch)) == RET_KILL_PROCESS
    assert run_filter(program, Call(0, 0x40000003)) == RET_KILL_PROCESS  # i386
    if arch is X86_64:  # x32: bit 30 set, the deny list's numbers reached another way
        assert decide(0x40000000 | 101) == RET_KILL_PROCESS
        assert decide(0x40000000 | 521) == RET_KILL_PROCESS  # x32's own ptrace


def test_the_tables_name_the_same_calls() -> None:
    """A refused call missing from one table must not exist on that architecture."""
    only_x86 = {"fork", "vfork", "modify_ldt", "iopl", "ioperm", "uselib", "_sysctl"}
    assert set(X86_64.numbers) - set(AARCH64.numbers) == only_x86
    assert set(AARCH64.numbers) <= set(X86_64.numbers)
    assert set(REFUSED) <= set(X86_64.numbers)
    assert native_arch() in (X86_64, AARCH64)


PROBE = r"""
import ctypes, errno, json, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(fn, *args):
    ctypes.set_errno(0)
    result = fn(*args)
    return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
def py(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
outcome = {
    "ptrace": call(libc.ptrace, 0, 0, None, None),
    "unshare-user": call(libc.unshare, 0x10000000),
    "keyctl": call(libc.syscall, NR["keyctl"], 0, 0, 0, 0, 0),
    "bpf": call(libc.syscall, NR["bpf"], 0, None, 0),
    "userfaultfd": call(libc.syscall, NR["userfaultfd"], 0),
    "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
    "setns": call(libc.setns, 0, 0),
    "io_uring_setup": call(libc.syscall, NR["io_uring_setup"], 1, None),
    "clone3": call(libc.syscall, NR["clone3"], None, 0),
    "chdir": py(lambda: os.chdir("/")),
    "fork": py(os.fork),
    "inet-socket": py(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()),
    "unix-socket": py(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
}
thread = threading.Thread(target=lambda: outcome.__setitem__("thread", "ok"))
thread.start()
thread.join()
print(json.dumps(outcome))
"""


def under_filter(code: str, *, network: bool = False) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` in a process that installed the filter itself (the Landlock layer's
    launcher, with Landlock left out)."""
    arch = native_arch()
    assert arch is not None
    program = seccomp_program(arch, network=network)
    spec = {"landlock": None, "seccomp": base64.b64encode(program).decode()}
    numbers = {
        name: arch.numbers[name]
        for name in ("keyctl", "bpf", "userfaultfd", "io_uring_setup", "clone3")
    }
    source = f"NR = {numbers!r}\n{code}"
    return subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(_LAUNCHER),
            json.dumps(spec),
            sys.executable,
            "-I",
            "-c",
            source,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(platform.system() != "Linux", reason="seccomp is Linux's")
def test_the_kernel_refuses_what_the_filter_refuses() -> None:
    done = under_filter(PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ptrace": "EPERM",
        "unshare-user": "EPERM",
        "keyctl": "EPERM",
        "bpf": "EPERM",
        "userfaultfd": "EPERM",
        "mount": "EPERM",
        "setns": "EPERM",
        "io_uring_setup": "EPERM",
        "clone3": "ENOSYS",
        "chdir": "EPERM",
        "fork": "EPERM",
        "inet-socket": "EPERM",
        "unix-socket": "ok",
        "thread": "ok",  # pthread_create falls back from clone3 to clone(CLONE_THREAD)
    }


@pytest.mark.skipif(platform.system() != "Linux", reason="seccomp is Linux's")
def test_with_the_network_sockets_are_allowed() -> None:
    code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close(); print('ok')"
    done = under_filter(code, network=True)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the x32 ABI is x86_64's")
def test_an_x32_call_kills_the_process() -> None:
    code = "import ctypes; ctypes.CDLL(None).syscall(0x40000000 | 39); print('alive')"
    done = under_filter(code)
    assert (done.returncode, done.stdout) == (-signal.SIGSYS, "")
