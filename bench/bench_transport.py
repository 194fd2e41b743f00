"""What a tool call costs at the bottom: the same round trip, host -> Deno -> host, with less
and less of codemode in it. The gap between the rows is what each layer costs; the first two
rows are the floor the transport cannot go below.

    python bench/bench_transport.py                  # CPU per round trip (psutil), both sides
    python bench/bench_transport.py --callgrind      # Deno's user-space instructions instead

Rows: ``socket`` (Python asyncio <-> Deno main thread, nothing else), ``worker`` (the same with
a hop to a Worker and back, as every program call makes), ``runner`` (the real runner.ts and
worker bootstrap, the host answering at once without the bridge). ``--callgrind`` runs Deno
under ``valgrind --tool=callgrind`` (slow: a few minutes) and counts instructions, which do
not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from codemode.sandboxes import deno as deno_module

PING_PONG = """
const conn = await Deno.connect({ transport: "unix", path: Deno.args[0] });
const encoder = new TextEncoder(), decoder = new TextDecoder();
let answer = (line) => conn.write(encoder.encode(line + "\\n"));
if (Deno.args[1] === "worker") {
  const source = "self.onmessage = (e) => self.postMessage(e.data);";
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })),
    { type: "module" });
  worker.onmessage = (e) => conn.write(encoder.encode(e.data + "\\n"));
  answer = (line) => worker.postMessage(line);
}
const buffer = new Uint8Array(65536);
for (let n; (n = await conn.read(buffer)) !== null;) {
  for (const line of decoder.decode(buffer.subarray(0, n)).split("\\n")) if (line) answer(line);
}
"""
REPLY = b'{"t":"ret","c":1,"ok":true,"v":{"value":1,"label":"x"}}\n'
LIMITS = {
    "maxToolCalls": 1_000_000,
    "maxConcurrentToolCalls": 256,
    "maxLogBytes": 1_000_000,
    "maxResultBytes": 10_000_000,
    "maxWorkers": 0,
}


class Host(asyncio.Protocol):
    """Answers every line at once: a ping for the ping-pong rows, a ret for each call."""

    def __init__(self, runner: bool) -> None:
        self.runner = runner
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.messages: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.pongs = 0
        self.wanted = 0
        self.finished: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            if not self.runner:
                self.pongs += 1
                if self.pongs < self.wanted:
                    self.transport.write(REPLY)
                elif self.finished is not None:
                    self.finished.set_result(None)
                continue
            if line[:1] == b"C":  # a call: C<id> <tool index> <input>; the reply: R<id> <value>
                head, _, rest = line.partition(b" ")
                value = rest.partition(b" ")[2]
                answer = json.dumps(json.loads(value)).encode()
                self.transport.write(b"R%b %b\n" % (head[1:], answer))
                continue
            message = json.loads(line)
            if message["t"] == "call":  # the protocol before the rings (--runner of an old copy)
                reply = {"t": "ret", "c": message["c"], "ok": True, "v": json.loads(message["a"])}
                self.transport.write(json.dumps(reply).encode() + b"\n")
            else:
                self.messages.put_nowait(message)


async def measure(row: str, calls: int, prefix: list[str], runner: Path) -> dict[str, float]:
    workdir = tempfile.mkdtemp(prefix="codemode-bench-")
    socket_path = os.path.join(workdir, "host.sock")
    loop = asyncio.get_running_loop()
    host = Host(runner=row == "runner")
    server = await loop.create_unix_server(lambda: host, socket_path)
    if row == "runner":
        config = deno_module._ProcessConfig(256, 512, False, deno_module._private_deno_dir())
        args = [*deno_module._deno_flags(config, socket_path), str(runner)]
        env = deno_module._environment(config, socket_path, workdir)
    else:
        script = Path(workdir, "ping_pong.js")
        script.write_text(PING_PONG)
        args = ["--allow-all", str(script), socket_path, row]
        env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*prefix, deno_module.deno_executable(), "run", *args], env=env, cwd=workdir
    )
    try:
        await host.connected
        if row == "runner":
            assert (await host.messages.get())["t"] == "ready"
        deno = psutil.Process(proc.pid)
        me = psutil.Process()
        cpu = [sum(p.cpu_times()[:2]) for p in (me, deno)]
        started = time.perf_counter()
        if row == "runner":
            program = (
                "export default async function () {\nlet n = 0\n"
                f"for (let i = 0; i < {calls}; i++)\n"
                "  n += (await external_echo({ value: i, label: 'x' })).value\nreturn n\n}"
            )
            run = {"t": "run", "source": program, "lineOffset": 1, "tools": ["echo"]}
            assert host.transport is not None
            host.transport.write(json.dumps({**run, "limits": LIMITS}).encode() + b"\n")
            done = await host.messages.get()
            assert done["t"] == "done" and done["ok"], done
        else:
            host.wanted = calls
            host.finished = loop.create_future()
            assert host.transport is not None
            host.transport.write(REPLY)
            await host.finished
        elapsed = time.perf_counter() - started
        host_cpu, deno_cpu = (
            sum(p.cpu_times()[:2]) - before for p, before in zip((me, deno), cpu, strict=True)
        )
        return {
            "round_trips_per_s": round(calls / elapsed),
            "host_us": round(host_cpu / calls * 1e6, 1),
            "deno_us": round(deno_cpu / calls * 1e6, 1),
        }
    finally:
        if prefix:
            proc.terminate()  # valgrind writes its counts as Deno exits
        else:
            proc.kill()
        proc.wait()
        server.close()


def callgrind_total(path: str) -> int:
    out = subprocess.run(["callgrind_annotate", path], capture_output=True, text=True).stdout
    line = next(line for line in out.splitlines() if "PROGRAM TOTALS" in line)
    return int(line.split()[0].replace(",", ""))


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--callgrind", action="store_true", help="count Deno's instructions")
    parser.add_argument(
        "--runner",
        type=Path,
        default=deno_module.RUNNER,
        help="another runner.ts (e.g. an old copy)",
    )
    parser.add_argument("--rows", nargs="*", default=["socket", "worker", "runner"])
    args = parser.parse_args(argv)
    print(f"one round trip, {psutil.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for row in args.rows:
        if not args.callgrind:
            figures = await measure(row, args.calls, [], args.runner)
        else:
            # Instructions for `calls` round trips, less those of a run with one (start-up).
            totals = []
            for calls in (1, 1 + 1000):
                with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
                    prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}"]
                    prefix += ["--smc-check=all-non-file", "--quiet"]
                    await measure(row, calls, prefix, args.runner)
                    totals.append(callgrind_total(out.name))
            figures = {"deno_instructions": round((totals[1] - totals[0]) / 1000)}
        print(f"BENCH {json.dumps({'figure': f'round trip, {row}', **figures})}")
        shown = "  ".join(f"{k}={v}" for k, v in figures.items())
        print(f"  {row:<8} {shown}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
