// Many players, one model: aggregate generation throughput and inter-token latency of N concurrent streams against
// one stream alone, for fabula (`fabula serve --parallel N`, continuous batching, /completion SSE streams) and for
// llama.cpp (node-llama-cpp 3.21.1: one context with N sequences, which it batches into one decode per step).
//
// Each stream: a prompt of --prompt random token ids (BOS first; a different prompt per stream), then --tokens
// generated tokens (EOG ignored). Per engine, per repetition:
//   alone:     one stream by itself;
//   together:  N streams started at the same moment.
// Reported per engine: aggregate tokens/s (generated tokens of all streams / wall time from the first request to the
// last token), the generation-only rate (from each stream's first token), and the inter-token gaps (time between
// consecutive tokens of one stream): median and p99. Then the ratios that say whether serving many players pays:
//   fabula together / fabula alone (aggregate t/s),  fabula together / llama.cpp together (aggregate t/s),
//   fabula p99 gap together / fabula median gap alone.
// The engines run one after the other (never both models resident), in alternating order per round.
//
//   node bench/multi-stream/run.mjs --model F.gguf [--fabula build/fabula] [--streams 4] [--tokens 64]
//        [--prompt 32] [-t 2] [--reps 3] [--rounds 1] [--only fabula|llama] [--json OUT.json]
//        [--serve-log FILE] [--serve-args "..."]
// --serve-log runs the server with -v and writes its log there (one line per forward step: sequences, tokens,
// distinct experts per layer, where the step's time went); --serve-args adds options to `fabula serve`.
import { spawn } from "node:child_process";
import { createWriteStream, writeFileSync, readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");

function parseArgs(argv) {
  const a = { model: "", fabula: path.join(repo, "build/fabula"), streams: 4, tokens: 64, prompt: 32, t: 2, reps: 3,
              rounds: 1, only: "", json: "", seed: 1234, serveLog: "", serveArgs: "" };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i], v = argv[i + 1];
    if (k === "--model" || k === "-m") { a.model = v; ++i; }
    else if (k === "--fabula") { a.fabula = v; ++i; }
    else if (k === "--streams") { a.streams = +v; ++i; }
    else if (k === "--tokens" || k === "-n") { a.tokens = +v; ++i; }
    else if (k === "--prompt" || k === "-p") { a.prompt = +v; ++i; }
    else if (k === "-t" || k === "--threads") { a.t = +v; ++i; }
    else if (k === "--reps" || k === "-r") { a.reps = +v; ++i; }
    else if (k === "--rounds") { a.rounds = +v; ++i; }
    else if (k === "--only") { a.only = v; ++i; }
    else if (k === "--json") { a.json = v; ++i; }
    else if (k === "--seed") { a.seed = +v; ++i; }
    else if (k === "--serve-log") { a.serveLog = v; ++i; }
    else if (k === "--serve-args") { a.serveArgs = v; ++i; }
    else throw new Error(`unknown argument ${k} (see the usage at the top of ${path.basename(fileURLToPath(import.meta.url))})`);
  }
  if (!a.model) throw new Error("--model is required");
  return a;
}

const args = parseArgs(process.argv.slice(2));
const now = () => performance.now();

// mulberry32: seeded token ids, the same prompts for both engines.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function prompts(vocab, bos, rep) {
  const rand = rng(args.seed + 7919 * rep);
  // Ids from the lower part of the vocabulary (plain pieces, not the special tokens at its end).
  const span = Math.max(16, Math.min(vocab, 32000) - 16);
  return Array.from({ length: args.streams }, () => {
    const ids = Array.from({ length: args.prompt }, () => 16 + Math.floor(rand() * span));
    ids[0] = bos;
    return ids;
  });
}

const quantile = (xs, q) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const loadAvg = () => { try { return +readFileSync("/proc/loadavg", "utf8").split(" ")[0]; } catch { return -1; } };

// One run's summary: streams = [{start, stamps: [ms of each token]}].
function summarize(streams) {
  const t0 = Math.min(...streams.map((s) => s.start));
  const t1 = Math.max(...streams.map((s) => s.stamps.at(-1)));
  const tokens = streams.reduce((n, s) => n + s.stamps.length, 0);
  const gaps = streams.flatMap((s) => s.stamps.slice(1).map((t, i) => t - s.stamps[i]));
  const genFrom = Math.min(...streams.map((s) => s.stamps[0]));
  return {
    tokens,
    aggregate_ts: (tokens / (t1 - t0)) * 1e3,
    generation_ts: ((tokens - streams.length) / (t1 - genFrom)) * 1e3,
    first_token_ms: Math.max(...streams.map((s) => s.stamps[0] - s.start)),
    gap_median_ms: quantile(gaps, 0.5),
    gap_p99_ms: quantile(gaps, 0.99),
    gaps_ms: gaps,
  };
}

// ---- fabula: `fabula serve --parallel N`, /completion SSE streams ----

function startServe() {
  const a = [...(args.serveLog ? ["-v"] : []), "serve", "--model", args.model, "--port", "0", "-t", `${args.t}`,
             "--parallel", `${args.streams}`, "-c", `${Math.max(256, args.prompt + args.tokens + 64)}`,
             ...args.serveArgs.split(" ").filter((x) => x)];
  const p = spawn(args.fabula, a, { stdio: ["ignore", "pipe", "pipe"] });
  if (args.serveLog) p.stderr.pipe(createWriteStream(args.serveLog, { flags: "a" }));
  return new Promise((resolve, reject) => {
    let out = "", err = "", port = 0;
    p.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on https?:\/\/[^:]+:(\d+)/);
      if (m) port = +m[1];
      if (port && out.includes("model ready")) resolve({ p, port });
    });
    p.stderr.on("data", (d) => { err += d; });
    p.on("exit", (code) => reject(new Error(`fabula serve exited ${code}: ${out}${err}`)));
  });
}

function request(port, method, route, body) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : "";
    const req = http.request({ host: "127.0.0.1", port, method, path: route, agent: false,
                               headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } },
      (res) => { let s = ""; res.on("data", (d) => { s += d; }); res.on("end", () => resolve(JSON.parse(s))); });
    req.on("error", reject);
    req.end(data);
  });
}

// One /completion stream; resolves to {start, stamps}.
function fabulaStream(port, prompt) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt, n_predict: args.tokens, stream: true, ignore_eos: true, temperature: 0,
                                  cache_prompt: false });
    const start = now(), stamps = [];
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/completion", agent: false,
                               headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } },
      (res) => {
        let buf = "";
        res.on("data", (d) => {
          buf += d;
          for (let i; (i = buf.indexOf("\n\n")) >= 0;) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!ev.startsWith("data: ")) continue;
            const j = JSON.parse(ev.slice(6));
            if (j.error) return reject(new Error(JSON.stringify(j.error)));
            // One event per token (content may be empty for a partial UTF-8 piece); the closing event has stop.
            if (!j.stop) stamps.push(now());
          }
        });
        res.on("end", () => (stamps.length ? resolve({ start, stamps }) : reject(new Error("no tokens streamed"))));
      });
    req.on("error", reject);
    req.end(body);
  });
}

// The server's step counters (/metrics), to count the steps taken while the streams ran together.
async function stepCounters(port) {
  const metrics = await new Promise((resolve) => http.get({ host: "127.0.0.1", port, path: "/metrics", agent: false },
    (res) => { let s = ""; res.on("data", (d) => { s += d; }); res.on("end", () => resolve(s)); }));
  const metric = (name) => +(metrics.match(new RegExp(`\\nllamacpp:${name} ([0-9.e+-]+)`)) ?? [0, NaN])[1];
  return { steps: metric("batch_steps_total"), sequences: metric("batch_sequences_total"),
           tokens: metric("batch_tokens_total") };
}

async function runFabula() {
  const { p, port } = await startServe();
  try {
    const models = await request(port, "GET", "/v1/models");
    const vocab = models.data?.[0]?.meta?.n_vocab ?? 2000;
    const bos = 2;
    await fabulaStream(port, prompts(vocab, bos, 999)[0].slice(0, 8));  // warm-up
    const out = { alone: [], together: [] };
    const together = { steps: 0, sequences: 0, tokens: 0 };  // steps of the together runs only
    for (let rep = 0; rep < args.reps; ++rep) {
      const ps = prompts(vocab, bos, rep);
      out.alone.push(summarize([await fabulaStream(port, ps[0])]));
      const before = await stepCounters(port);
      out.together.push(summarize(await Promise.all(ps.map((pr) => fabulaStream(port, pr)))));
      const after = await stepCounters(port);
      for (const k of Object.keys(together)) together[k] += after[k] - before[k];
    }
    out.server = { batch_size_avg: together.sequences / together.steps, tokens_per_step_avg: together.tokens / together.steps,
                   steps: together.steps };
    return out;
  } finally {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
  }
}

// ---- llama.cpp: node-llama-cpp, one context with N sequences ----

async function runLlama() {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: args.t });
  const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0, useMmap: true });
  const context = await model.createContext({
    contextSize: args.streams * Math.max(256, args.prompt + args.tokens + 64),
    batchSize: Math.max(512, args.streams * args.prompt),
    threads: { ideal: args.t, min: args.t },
    sequences: args.streams,
  });
  const seqs = Array.from({ length: args.streams }, () => context.getSequence());
  const vocab = Number((model.fileInfo.fullTensorInfo ?? model.fileInfo.tensorInfo).find((t) => t.name === "token_embd.weight").dimensions[1]);
  const bos = model.tokens.bos ?? 2;
  // Prompt, then one token per step; node-llama-cpp puts the sequences' pending tokens into one batch per cycle.
  async function stream(seq, prompt) {
    await seq.clearHistory();
    const start = now(), stamps = [];
    const input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { token: true } }] : t));
    let res = await seq.controlledEvaluate(input);
    let tok = res.at(-1)?.next?.token ?? bos;
    stamps.push(now());
    while (stamps.length < args.tokens) {
      res = await seq.controlledEvaluate([[tok, { generateNext: { token: true } }]]);
      tok = res[0]?.next?.token ?? bos;  // an end-of-generation token is fed back like any other (EOG ignored)
      stamps.push(now());
    }
    return { start, stamps };
  }
  try {
    await stream(seqs[0], prompts(vocab, bos, 999)[0].slice(0, 8));  // warm-up
    const out = { alone: [], together: [] };
    for (let rep = 0; rep < args.reps; ++rep) {
      const ps = prompts(vocab, bos, rep);
      out.alone.push(summarize([await stream(seqs[0], ps[0])]));
      out.together.push(summarize(await Promise.all(ps.map((pr, i) => stream(seqs[i], pr)))));
    }
    return out;
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

// ---- rounds, pooled results, report ----

const results = { fabula: { alone: [], together: [] }, llama: { alone: [], together: [] } };
const servers = [];
const load = [loadAvg()];
for (let round = 0; round < args.rounds; ++round) {
  const order = round % 2 === 0 ? ["fabula", "llama"] : ["llama", "fabula"];
  for (const engine of order) {
    if (args.only && args.only !== engine) continue;
    process.stderr.write(`[round ${round + 1}/${args.rounds}] ${engine}\n`);
    const r = engine === "fabula" ? await runFabula() : await runLlama();
    results[engine].alone.push(...r.alone);
    results[engine].together.push(...r.together);
    if (r.server) servers.push(r.server);
  }
}
load.push(loadAvg());

const median = (xs) => quantile(xs, 0.5);
function pooled(runs) {
  if (!runs.length) return null;
  const gaps = runs.flatMap((r) => r.gaps_ms);
  return {
    runs: runs.length,
    aggregate_ts: median(runs.map((r) => r.aggregate_ts)),
    generation_ts: median(runs.map((r) => r.generation_ts)),
    first_token_ms: median(runs.map((r) => r.first_token_ms)),
    gap_median_ms: quantile(gaps, 0.5),
    gap_p99_ms: quantile(gaps, 0.99),
  };
}
const table = {};
for (const engine of ["fabula", "llama"])
  for (const mode of ["alone", "together"]) table[`${engine} ${mode}`] = pooled(results[engine][mode]);

const f = (x, d = 2) => (x == null || Number.isNaN(x) ? "-" : x.toFixed(d));
console.log(`model: ${args.model}`);
console.log(`streams: ${args.streams} x ${args.tokens} tokens (prompt ${args.prompt}), threads ${args.t}, ` +
            `${args.rounds} round(s) x ${args.reps} rep(s); load average ${load.join(" -> ")}`);
console.log(`date: ${new Date().toISOString()}, host: ${os.hostname()}, cpus: ${os.cpus()[0]?.model} x ${os.cpus().length}`);
console.log("");
console.log("| engine | streams | aggregate t/s | generation t/s | first token ms | gap median ms | gap p99 ms |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const [name, r] of Object.entries(table)) {
  if (!r) continue;
  const [engine, mode] = name.split(" ");
  console.log(`| ${engine === "llama" ? "llama.cpp (node-llama-cpp 3.21.1)" : "fabula serve"} | ` +
              `${mode === "alone" ? 1 : args.streams} | ${f(r.aggregate_ts)} | ${f(r.generation_ts)} | ` +
              `${f(r.first_token_ms, 1)} | ${f(r.gap_median_ms, 1)} | ${f(r.gap_p99_ms, 1)} |`);
}
const fa = table["fabula alone"], ft = table["fabula together"], lt = table["llama together"];
console.log("");
if (fa && ft) {
  console.log(`fabula ${args.streams} streams / 1 stream, aggregate t/s: ${f(ft.aggregate_ts / fa.aggregate_ts)}x (target >= 2.5x)`);
  console.log(`fabula p99 gap with ${args.streams} streams / median gap alone: ${f(ft.gap_p99_ms / fa.gap_median_ms)}x (target <= 2.5x)`);
  if (servers.length)
    console.log(`fabula steps while ${args.streams} streams ran together: ${f(median(servers.map((s) => s.batch_size_avg)))} ` +
                `sequences, ${f(median(servers.map((s) => s.tokens_per_step_avg)), 1)} tokens per step on average`);
}
if (ft && lt) console.log(`fabula / llama.cpp with ${args.streams} streams, aggregate t/s: ${f(ft.aggregate_ts / lt.aggregate_ts)}x (target >= 1.5x)`);
if (args.json) writeFileSync(args.json, JSON.stringify({ args, load, table, results, servers }, null, 2));
