"""The runner ships as JavaScript built from ``runner/runner.ts``.

Deno would transpile the TypeScript at every process start: 7-14 ms of a cold start, since
the emit cache is off (see ``_environment`` in deno.py). ``runner.js`` is that transpile done
once, by ``deno bundle``, and committed; its first line names the source's hash, so a test
fails when ``runner.ts`` changes and the JavaScript was not built again:

    python -m codemode.sandboxes._runner_build
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNER_SOURCE = Path(__file__).parent / "runner" / "runner.ts"
RUNNER_BUILT = RUNNER_SOURCE.with_suffix(".js")
_HEADER = (
    "// Built from runner.ts by `python -m codemode.sandboxes._runner_build` (deno bundle, "
    "Deno {deno}); do not edit. runner.ts sha256 {digest}\n"
)
_HEADER_DIGEST = re.compile(r"^// Built from runner\.ts .* sha256 ([0-9a-f]{64})$")


def source_digest() -> str:
    return hashlib.sha256(RUNNER_SOURCE.read_bytes()).hexdigest()


def built_digest() -> str | None:
    """The hash of the ``runner.ts`` that ``runner.js`` was built from (None: no header)."""
    if not RUNNER_BUILT.is_file():
        return None
    with RUNNER_BUILT.open(encoding="utf-8") as file:
        match = _HEADER_DIGEST.match(file.readline().rstrip("\n"))
    return match[1] if match else None


def bundle() -> str:
    """``runner.ts`` as JavaScript, with the header: what ``runner.js`` must hold."""
    from .deno import deno_executable

    deno = deno_executable()
    version = subprocess.run(
        [deno, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "runner.js"
        subprocess.run(
            [
                deno,
                "bundle",
                "--quiet",
                "--no-config",
                "--no-lock",
                "--platform=deno",
                f"--output={out}",
                str(RUNNER_SOURCE),
            ],
            check=True,
            env={**os.environ, "NO_COLOR": "1"},  # Deno fetches esbuild from npm once
            timeout=120,
        )
        body = out.read_text(encoding="utf-8")
    # esbuild's first line names the source by a path relative to the output: drop it.
    body = re.sub(r"\A// [^\n]*runner\.ts\n", "", body)
    return _HEADER.format(deno=version, digest=source_digest()) + body


def main() -> None:
    RUNNER_BUILT.write_text(bundle(), encoding="utf-8")
    print(f"wrote {RUNNER_BUILT}", file=sys.stderr)


if __name__ == "__main__":
    main()
