"""Confine this process with Landlock and seccomp, then execute the sandbox's command in it.

    python -I -S _landlock_exec.py SPEC_JSON COMMAND [ARG...]

The OS wall's fallback where bubblewrap cannot make namespaces. Landlock and seccomp restrict the
thread that asks and everything it later starts, so they must be applied in the child before it
executes Deno. Python's ``preexec_fn`` would do that inside a fork of the host, a multi-threaded
process where running Python code between fork and exec can deadlock; this launcher is a process
of its own with one thread, started with ``-I -S`` (no site, no environment), so it is quick and
imports nothing but the standard library. It cannot import codemode: the host passes everything
in SPEC (paths and rights, and the seccomp program it built). Any failure exits with status 126
and one line on stderr, before the command starts: a wall that cannot be built is never skipped.
"""

import base64
import ctypes
import json
import os
import sys
from typing import Any

# landlock(7): system calls (the same numbers on every architecture) and ABI flags.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # all a non-directory takes
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class WallError(Exception):
    pass


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise WallError(f"{what} failed: {os.strerror(code)} (errno {code})")
    return result


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def handled_fs(abi: int) -> int:
    rights = FS_ABI1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def apply_landlock(rules: dict[str, Any]) -> None:
    """Restrict this thread (and what it executes) to ``rules``: {"read": [paths], "write":
    [paths], "execute": [paths], "network": bool}. Paths that do not exist are skipped."""
    abi = abi_version()
    if abi < 1:
        raise WallError("Landlock is not available in this kernel")
    fs = handled_fs(abi)
    attr = _RulesetAttr(handled_access_fs=fs)
    size = 8
    if abi >= 4:
        size = 16
        if not rules["network"]:
            attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP  # and no port is allowed
    if abi >= 6:
        size = 24
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset = _check(
        _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0),
        "landlock_create_ruleset",
    )
    read = READ_FILE | READ_DIR
    grants = [
        *((path, read) for path in rules["read"]),
        *((path, read | EXECUTE) for path in rules["execute"]),
        *((path, fs) for path in rules["write"]),
    ]
    for path, rights in grants:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
            allowed = (rights if is_dir else rights & FILE_RIGHTS) & fs
            rule = _PathBeneathAttr(allowed_access=allowed, parent_fd=fd)
            _check(
                _libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0),
                f"landlock_add_rule({path})",
            )
        finally:
            os.close(fd)
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(_libc.syscall(_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    os.close(ruleset)


def apply_seccomp(program: bytes) -> None:
    fprog = _SockFprog(len=len(program) // 8, filter=program)
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(
        _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0),
        "seccomp(SECCOMP_SET_MODE_FILTER)",
    )


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.stderr.write("usage: _landlock_exec.py SPEC_JSON COMMAND [ARG...]\n")
        os._exit(126)
    try:
        spec = json.loads(argv[1])
        if spec.get("landlock") is not None:
            apply_landlock(spec["landlock"])
        if spec.get("seccomp") is not None:
            apply_seccomp(base64.b64decode(spec["seccomp"]))
        names = spec.get("env")
        env = os.environ if names is None else {k: os.environ[k] for k in names if k in os.environ}
        os.execve(argv[2], argv[2:], env)
    except (WallError, OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"codemode confinement (landlock): {exc}\n")
        sys.stderr.flush()
        os._exit(126)


if __name__ == "__main__":
    main(sys.argv)
