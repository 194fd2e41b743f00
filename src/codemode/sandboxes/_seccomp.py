"""The seccomp filter of the OS wall: a small classic-BPF program that refuses the system calls a
sandbox never needs, whatever reaches native code inside it.

Generated here rather than with libseccomp: its Python bindings need ``libseccomp.so`` on the
user's machine (``pip install`` alone cannot promise it), and the pure-Python generator on PyPI
does not refuse the x32 ABI, through which every call of a deny list can be reached again on
kernels that enable it. The program is fixed and small (one comparison per refused call), so it is
written out here and checked instruction by instruction in ``tests/test_confine_seccomp.py``.

The same bytes serve both layers: bubblewrap loads them from a descriptor (``--seccomp FD``), and
the Landlock launcher installs them with ``seccomp(2)`` before it executes Deno.
"""

from __future__ import annotations

import errno
import platform
import struct
import sys
from dataclasses import dataclass

__all__ = ["REFUSED", "SeccompArch", "native_arch", "seccomp_program"]

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
_LD_W_ABS = 0x20  # A = the 32-bit word at offset k of struct seccomp_data
_JEQ_K = 0x15  # pc += (A == k) ? jt : jf
_JGE_K = 0x35  # pc += (A >= k) ? jt : jf
_JSET_K = 0x45  # pc += (A & k) ? jt : jf
_RET_K = 0x06  # return k

# Return actions (linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6].
_NR = 0
_ARCH = 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of argument ``index`` (the flags and families checked here
    live there; the kernel reads only those bits of an ``int`` argument)."""
    offset = 16 + 8 * index
    return offset if sys.byteorder == "little" else offset + 4


CLONE_THREAD = 0x00010000
# Every flag that makes a new namespace (CLONE_NEWTIME shares its bit with CSIGNAL in clone(2),
# where the kernel ignores it; it is refused through unshare, which is refused whole).
CLONE_NEW_NAMESPACES = (
    0x00020000  # NEWNS
    | 0x02000000  # NEWCGROUP
    | 0x04000000  # NEWUTS
    | 0x08000000  # NEWIPC
    | 0x10000000  # NEWUSER
    | 0x20000000  # NEWPID
    | 0x40000000  # NEWNET
)
AF_UNIX = 1
X32_SYSCALL_BIT = 0x40000000

# What a sandbox never needs, and why a sandbox that reached native code would want it.
REFUSED = (
    # Reading or steering other processes.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    # The kernel keyring (other sessions' secrets, and a history of kernel bugs).
    "keyctl",
    "add_key",
    "request_key",
    # Kernel attack surface no JavaScript runtime uses.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",  # io_uring runs file and socket operations that seccomp never sees
    "io_uring_enter",
    "io_uring_register",
    "modify_ldt",
    "personality",
    "uselib",
    "lookup_dcookie",
    "_sysctl",
    "nfsservctl",
    "vhangup",
    "syslog",
    # Mounts and namespaces: the walls themselves.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "open_tree_attr",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    # Files by handle, around every path-based check.
    "open_by_handle_at",
    "name_to_handle_at",
    # The machine itself.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    # New processes: threads are made with clone(CLONE_THREAD), checked below.
    "fork",
    "vfork",
    # The working directory is the process's for all its executions: one program must not move
    # the next one's (the wall starts the process in its scratch directory).
    "chdir",
    "fchdir",
)


@dataclass(frozen=True)
class SeccompArch:
    """One architecture's audit number and system call numbers."""

    name: str
    audit_arch: int
    numbers: dict[str, int]
    x32_bit: bool  # x86_64: calls with bit 30 set are the x32 ABI, numbered differently


# Numbers from the kernel's asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64).
# A name missing from an architecture does not exist there.
X86_64 = SeccompArch(
    name="x86_64",
    audit_arch=0xC000003E,
    x32_bit=True,
    numbers={
        "socket": 41,
        "clone": 56,
        "chdir": 80,
        "fchdir": 81,
        "fork": 57,
        "vfork": 58,
        "ptrace": 101,
        "syslog": 103,
        "uselib": 134,
        "personality": 135,
        "vhangup": 153,
        "modify_ldt": 154,
        "pivot_root": 155,
        "_sysctl": 156,
        "adjtimex": 159,
        "chroot": 161,
        "acct": 163,
        "settimeofday": 164,
        "mount": 165,
        "umount2": 166,
        "swapon": 167,
        "swapoff": 168,
        "reboot": 169,
        "iopl": 172,
        "ioperm": 173,
        "init_module": 175,
        "delete_module": 176,
        "quotactl": 179,
        "nfsservctl": 180,
        "lookup_dcookie": 212,
        "clock_settime": 227,
        "kexec_load": 246,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "unshare": 272,
        "perf_event_open": 298,
        "name_to_handle_at": 303,
        "open_by_handle_at": 304,
        "clock_adjtime": 305,
        "setns": 308,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "kcmp": 312,
        "finit_module": 313,
        "kexec_file_load": 320,
        "bpf": 321,
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "clone3": 435,
        "pidfd_getfd": 438,
        "mount_setattr": 442,
        "quotactl_fd": 443,
        "open_tree_attr": 467,
    },
)
AARCH64 = SeccompArch(
    name="aarch64",
    audit_arch=0xC00000B7,
    x32_bit=False,
    numbers={
        "lookup_dcookie": 18,
        "umount2": 39,
        "mount": 40,
        "pivot_root": 41,
        "nfsservctl": 42,
        "chdir": 49,
        "fchdir": 50,
        "chroot": 51,
        "vhangup": 58,
        "quotactl": 60,
        "acct": 89,
        "personality": 92,
        "unshare": 97,
        "kexec_load": 104,
        "init_module": 105,
        "delete_module": 106,
        "clock_settime": 112,
        "syslog": 116,
        "ptrace": 117,
        "reboot": 142,
        "settimeofday": 170,
        "adjtimex": 171,
        "socket": 198,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "clone": 220,
        "swapon": 224,
        "swapoff": 225,
        "perf_event_open": 241,
        "name_to_handle_at": 264,
        "open_by_handle_at": 265,
        "clock_adjtime": 266,
        "setns": 268,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "kcmp": 272,
        "finit_module": 273,
        "bpf": 280,
        "userfaultfd": 282,
        "kexec_file_load": 294,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "clone3": 435,
        "pidfd_getfd": 438,
        "mount_setattr": 442,
        "quotactl_fd": 443,
        "open_tree_attr": 467,
    },
)
_ARCHES = {"x86_64": X86_64, "amd64": X86_64, "aarch64": AARCH64, "arm64": AARCH64}


def native_arch() -> SeccompArch | None:
    """The architecture this interpreter runs on, if the filter knows its numbers."""
    return _ARCHES.get(platform.machine().lower())


class _Program:
    """A tiny two-pass assembler: jumps name labels, resolved to forward offsets."""

    def __init__(self) -> None:
        self.code: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def load(self, offset: int) -> None:
        self.code.append((_LD_W_ABS, 0, 0, offset))

    def jump(self, op: int, k: int, true: str | int = 0, false: str | int = 0) -> None:
        self.code.append((op, true, false, k))

    def ret(self, action: int) -> None:
        self.code.append((_RET_K, 0, 0, action))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (op, true, false, k) in enumerate(self.code):
            jt, jf = (self._offset(pc, target) for target in (true, false))
            out += struct.pack("=HBBI", op, jt, jf, k)
        return bytes(out)

    def _offset(self, pc: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - pc - 1
        if not 0 <= offset <= 255:  # classic BPF jumps forward only, by at most 255
            raise ValueError(f"seccomp jump to {target} out of range ({offset})")
        return offset


def seccomp_program(arch: SeccompArch, *, network: bool) -> bytes:
    """The filter as packed ``struct sock_filter`` instructions (for ``--seccomp FD`` or
    ``SECCOMP_SET_MODE_FILTER``).

    Refuses with EPERM every call in ``REFUSED``, ``clone`` that makes a namespace or a process
    (threads pass), and without ``network`` every socket but a unix one. ``clone3`` answers
    ENOSYS: its flags sit in memory a filter cannot read, and the C library then falls back to
    ``clone``. A call from another ABI (i386 or x32 on x86_64) kills the process: its numbers
    mean other calls.
    """
    numbers = arch.numbers
    refused = sorted({numbers[name] for name in REFUSED if name in numbers})
    p = _Program()
    p.load(_ARCH)
    p.jump(_JEQ_K, arch.audit_arch, 0, "kill")
    p.load(_NR)
    if arch.x32_bit:
        p.jump(_JGE_K, X32_SYSCALL_BIT, "kill", 0)
    for number in refused:
        p.jump(_JEQ_K, number, "eperm", 0)
    p.jump(_JEQ_K, numbers["clone"], "clone", 0)
    p.jump(_JEQ_K, numbers["clone3"], "enosys", 0)
    if not network:
        p.jump(_JEQ_K, numbers["socket"], "socket", 0)
    p.ret(RET_ALLOW)
    p.label("clone")
    p.load(_arg_low(0))
    p.jump(_JSET_K, CLONE_NEW_NAMESPACES, "eperm", 0)
    p.jump(_JSET_K, CLONE_THREAD, "allow", "eperm")
    if not network:
        p.label("socket")
        p.load(_arg_low(0))
        p.jump(_JEQ_K, AF_UNIX, "allow", "eperm")
    # Every jump goes forward: the verdicts come last.
    p.label("allow")
    p.ret(RET_ALLOW)
    p.label("eperm")
    p.ret(RET_ERRNO | errno.EPERM)
    p.label("enosys")
    p.ret(RET_ERRNO | errno.ENOSYS)
    p.label("kill")
    p.ret(RET_KILL_PROCESS)
    return p.assemble()
