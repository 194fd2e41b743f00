// The Mastra side of bench/bench_vs_mastra.py: Mastra's code mode (`createCodeMode` with
// `LocalSandbox`) on the same workloads and the same tools as codemode, with zod input and
// output schemas. Run by the Python benchmark with Node 22 and the packages it installed:
//
//   node mastra_harness.mjs '{"workload": "calls", "runs": 10, "calls": 1000}'
//
// Prints one JSON line: {"samples": [...]} (milliseconds per run) or {"executions": n,
// "seconds": s, "wrong": w} for throughput. Any failed program is an error (exit code 1).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCodeMode, createTool, noopObserve } from "@mastra/core/tools";
import { LocalSandbox } from "@mastra/core/workspace";
import { z } from "zod";

const params = JSON.parse(process.argv[2]);

// The same tools as codemode's side: an echo of a small record, and a sleep that answers after
// `ms` milliseconds; both validate their input and their output.
const Item = z.object({ value: z.number().int(), label: z.string() });
const echo = createTool({
  id: "echo",
  description: "Echo a record",
  inputSchema: Item,
  outputSchema: Item,
  execute: async (input) => input,
});
const Nap = z.object({ ms: z.number().int().min(0), i: z.number().int() });
const sleep = createTool({
  id: "sleep",
  description: "Answer after ms milliseconds",
  inputSchema: Nap,
  outputSchema: Nap,
  execute: async (input) => {
    await new Promise((resolve) => setTimeout(resolve, input.ms));
    return input;
  },
});

// What Mastra's agent passes a tool when tracing is off (its noop observability).
const context = { observe: noopObserve };

async function codeTool(workdir) {
  const sandbox = new LocalSandbox({ workingDirectory: workdir, env: { PATH: process.env.PATH } });
  await sandbox.start();
  const { tool } = createCodeMode({ tools: { echo, sleep }, sandbox });
  return { tool, sandbox };
}

async function execute(tool, code) {
  const result = await tool.execute({ code }, context);
  if (!result || result.success !== true) {
    throw new Error(`benchmark program failed: ${JSON.stringify(result)}`);
  }
  return result.result;
}

async function timed(runs, once, pauseMs = 0) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    // A pause before each run, untimed: an agent's model thinks between two programs.
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const started = performance.now();
    await once();
    samples.push(performance.now() - started);
  }
  return samples;
}

async function main() {
  const workdir = await mkdtemp(join(tmpdir(), "codemode-bench-mastra-"));
  try {
    const { workload, runs = 10 } = params;
    if (workload === "cold") {
      // A new code tool and sandbox each time, as an agent process would have at its start.
      const samples = [];
      for (let i = 0; i < runs; i++) {
        const started = performance.now();
        const { tool, sandbox } = await codeTool(join(workdir, `cold-${i}`));
        await execute(tool, params.code);
        samples.push(performance.now() - started);
        await sandbox.destroy?.();
      }
      return { samples };
    }
    const { tool } = await codeTool(join(workdir, "warm"));
    await execute(tool, params.code); // warm up: the first run loads Node's type stripper
    if (workload === "throughput") {
      let executions = 0;
      let wrong = 0;
      const deadline = performance.now() + params.seconds * 1000;
      const started = performance.now();
      const caller = async () => {
        while (performance.now() < deadline) {
          const value = await execute(tool, params.code);
          executions += 1;
          if (JSON.stringify(value) !== JSON.stringify(params.expect)) wrong += 1;
        }
      };
      await Promise.all(Array.from({ length: params.callers }, caller));
      return { executions, wrong, seconds: (performance.now() - started) / 1000 };
    }
    const samples = await timed(runs, async () => {
      const value = await execute(tool, params.code);
      if (JSON.stringify(value) !== JSON.stringify(params.expect)) {
        throw new Error(`wrong result: ${JSON.stringify(value)}`);
      }
    }, params.pauseMs ?? 0);
    return { samples };
  } finally {
    await rm(workdir, { recursive: true, force: true });
  }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  },
  (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
