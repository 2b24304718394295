// Head-to-head pp/tg benchmark on one GGUF: llama.cpp (node-llama-cpp 3.21.1, llama_bench.mjs) vs `fabula bench
// --json`, same thread count, engines alternating round by round (each in its own process, so only one model is
// resident at a time — the 26B files do not fit twice in RAM), then a ratio table (fabula / llama.cpp).
//
//   node bench/vs-llamacpp/run.mjs --model F.gguf [--fabula build-perf/fabula] [-p 512] [-n 128] [-r 5] [-t 2]
//        [--rounds 2] [--json out.json] [--no-fa]
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");

function parseArgs(argv) {
  const a = { model: "", fabula: path.join(repo, "build/fabula"), p: 512, n: 128, r: 5, t: 0, rounds: 2, json: "",
              fa: true, only: "" };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i], v = argv[i + 1];
    if (k === "--model" || k === "-m") { a.model = v; ++i; }
    else if (k === "--fabula") { a.fabula = v; ++i; }
    else if (k === "-p") { a.p = +v; ++i; }
    else if (k === "-n") { a.n = +v; ++i; }
    else if (k === "-r") { a.r = +v; ++i; }
    else if (k === "-t" || k === "--threads") { a.t = +v; ++i; }
    else if (k === "--rounds") { a.rounds = +v; ++i; }
    else if (k === "--json") { a.json = v; ++i; }
    else if (k === "--only") { a.only = v; ++i; }  // "fabula" or "llama": run one engine (debugging)
    else if (k === "--no-fa") a.fa = false;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.model) throw new Error("--model is required");
  return a;
}

const args = parseArgs(process.argv.slice(2));
const threads = args.t > 0 ? args.t : os.availableParallelism();
const common = ["-p", `${args.p}`, "-n", `${args.n}`, "-r", `${args.r}`];

function run(engine, round) {
  const seed = `${1000 + round}`;
  const cmd = engine === "fabula"
    ? [args.fabula, ["bench", "--model", args.model, ...common, "-t", `${threads}`, "--seed", seed, "--json"]]
    : [process.execPath, [path.join(here, "llama_bench.mjs"), "--model", args.model, ...common, "-t", `${threads}`,
                          "--seed", seed, ...(args.fa ? [] : ["--no-fa"])]];
  process.stderr.write(`[round ${round + 1}/${args.rounds}] ${engine}: ${cmd[0]} ${cmd[1].join(" ")}\n`);
  const res = spawnSync(cmd[0], cmd[1], { encoding: "utf8", maxBuffer: 64 << 20, cwd: repo });
  if (res.status !== 0) {
    process.stderr.write(res.stdout + res.stderr);
    throw new Error(`${engine} failed with status ${res.status}`);
  }
  const json = res.stdout.slice(res.stdout.indexOf("["));
  return JSON.parse(json);
}

// Per engine and test: all samples over all rounds.
const samples = { fabula: {}, llama: {} };
const records = [];
for (let round = 0; round < args.rounds; ++round) {
  const order = round % 2 === 0 ? ["llama", "fabula"] : ["fabula", "llama"];
  for (const engine of order) {
    if (args.only && args.only !== engine) continue;
    for (const r of run(engine, round)) {
      records.push({ round, ...r });
      (samples[engine][r.test] ??= { ts: [], rss: 0, load: [] }).ts.push(...r.samples_ts);
      samples[engine][r.test].rss = Math.max(samples[engine][r.test].rss, r.peak_rss_bytes);
      samples[engine][r.test].load.push(r.load_avg_start, r.load_avg_end);
    }
  }
}

const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs) => { const m = mean(xs); return xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1)) : 0; };
const fmt = (xs) => xs ? `${mean(xs).toFixed(2)} ± ${sd(xs).toFixed(2)}` : "-";
const gib = (b) => (b / 1024 ** 3).toFixed(2);

console.log(`model: ${args.model}`);
console.log(`threads: ${threads}, rounds: ${args.rounds} x ${args.r} reps, flash attention (llama.cpp): ${args.fa}`);
console.log(`date: ${new Date().toISOString()}, host: ${os.hostname()}, cpus: ${os.cpus()[0]?.model} x ${os.cpus().length}`);
console.log("");
console.log("| test | llama.cpp t/s | fabula t/s | fabula / llama.cpp | peak RSS llama.cpp / fabula (GiB) | load avg |");
console.log("|---|---|---|---|---|---|");
const tests = new Set([...Object.keys(samples.fabula), ...Object.keys(samples.llama)]);
for (const t of tests) {
  const l = samples.llama[t], f = samples.fabula[t];
  const ratio = l && f ? (mean(f.ts) / mean(l.ts)).toFixed(2) + "x" : "-";
  const loads = [...(l?.load ?? []), ...(f?.load ?? [])].filter((x) => x >= 0);
  console.log(`| ${t} | ${fmt(l?.ts)} | ${fmt(f?.ts)} | ${ratio} | ${l ? gib(l.rss) : "-"} / ${f ? gib(f.rss) : "-"} | ` +
              `${loads.length ? Math.min(...loads).toFixed(1) + "–" + Math.max(...loads).toFixed(1) : "-"} |`);
}
if (args.json) writeFileSync(args.json, JSON.stringify({ args, threads, records }, null, 2));
