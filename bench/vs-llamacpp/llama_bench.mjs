// llama.cpp (through node-llama-cpp 3.21.1, CPU build) measured with llama-bench's method, printing the same JSON
// records as `fabula bench --json`: random tokens (BOS first), fresh KV per run, pp = n_prompt tokens in one batch
// with logits for the last token only, tg = n_gen single-token decodes with logits each, one warm-up, r reps.
//
//   node bench/vs-llamacpp/llama_bench.mjs --model F.gguf [-p 512] [-n 128] [-r 5] [-t 2] [--seed 1234]
//       [-d DEPTH] [-ctk f16,q8_0,q4_0] [-ctv ...]
// -d: DEPTH random tokens are in the context before each test (evaluated once per cache type, erased back to after
// each run), as llama-bench's -d. -ctk / -ctv: KV cache types (node-llama-cpp's experimentalKvCacheKeyType /
// ValueType, ggml names), one context each, run in turn; -ctv defaults to the K type. Quantised V needs flash
// attention (on by default).
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { readFileSync } from "node:fs";
import os from "node:os";

function parseArgs(argv) {
  const a = { model: "", p: 512, n: 128, r: 5, t: 0, seed: 1234, warmup: true, fa: true, d: 0, ctk: ["f16"], ctv: [] };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i], v = argv[i + 1];
    if (k === "--model" || k === "-m") { a.model = v; ++i; }
    else if (k === "-p") { a.p = +v; ++i; }
    else if (k === "-n") { a.n = +v; ++i; }
    else if (k === "-r") { a.r = +v; ++i; }
    else if (k === "-t" || k === "--threads") { a.t = +v; ++i; }
    else if (k === "--seed") { a.seed = +v; ++i; }
    else if (k === "-d" || k === "--n-depth") { a.d = +v; ++i; }
    else if (k === "-ctk" || k === "--cache-type-k") { a.ctk = v.split(","); ++i; }
    else if (k === "-ctv" || k === "--cache-type-v") { a.ctv = v.split(","); ++i; }
    else if (k === "--no-warmup") a.warmup = false;
    else if (k === "--no-fa") a.fa = false;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.model) throw new Error("--model is required");
  return a;
}

// mulberry32: a small seeded generator (token ids only need to be random, not identical to fabula's).
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

function stats(ns, nTokens) {
  const ts = ns.map((x) => nTokens / (x * 1e-9));
  const mean = ts.reduce((s, x) => s + x, 0) / ts.length;
  const sd = ts.length > 1 ? Math.sqrt(ts.reduce((s, x) => s + (x - mean) ** 2, 0) / (ts.length - 1)) : 0;
  return { ts, mean, sd };
}

function loadAvg() {
  try { return +readFileSync("/proc/loadavg", "utf8").split(" ")[0]; } catch { return -1; }
}

function peakRss() {
  try {
    const m = readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+) kB/);
    return m ? +m[1] * 1024 : -1;
  } catch { return -1; }
}

const args = parseArgs(process.argv.slice(2));
const threads = args.t > 0 ? args.t : os.availableParallelism();
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads });
const t0 = process.hrtime.bigint();
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0, useMmap: true });
const loadS = Number(process.hrtime.bigint() - t0) * 1e-9;
const tensorInfo = model.fileInfo.fullTensorInfo ?? model.fileInfo.tensorInfo ?? [];
const embd = tensorInfo.find((t) => t.name === "token_embd.weight");
const vocab = Number(embd.dimensions[1]);
const bos = model.tokens.bos ?? 2;
const rand = rng(args.seed);
const randomToken = () => Math.floor(rand() * vocab);
const modelSize = model.size;
let nParams = 0;
for (const t of tensorInfo)
  nParams += t.dimensions.reduce((p, d) => p * Number(d), 1);
const loadAvgStart = loadAvg();
const results = [];
const pairs = args.ctk.flatMap((k) => (args.ctv.length ? args.ctv.map((v) => [k, v]) : [[k, k]]));
for (const [typeK, typeV] of pairs) {
  const context = await model.createContext({
    contextSize: Math.max(256, args.d + args.p + args.n + 16),
    batchSize: Math.max(1, args.p, Math.min(args.d, 512)),
    threads: { ideal: threads, min: threads },
    flashAttention: args.fa,
    sequences: 1,
    experimentalKvCacheKeyType: typeK.toUpperCase(),
    experimentalKvCacheValueType: typeV.toUpperCase(),
  });
  const seq = context.getSequence();
  if (args.d > 0) {
    const ctx = Array.from({ length: args.d }, randomToken);
    ctx[0] = bos;
    await seq.evaluateWithoutGeneratingNewTokens(ctx);
  }
  // Back to the depth: the tokens of the previous run are erased (or the whole history without a depth).
  const rewind = async () => {
    if (args.d === 0) await seq.clearHistory();
    else if (seq.nextTokenIndex > args.d) await seq.eraseContextTokenRanges([{ start: args.d, end: seq.nextTokenIndex }]);
  };
  const runPp = async (n) => {
    const tokens = Array.from({ length: n }, randomToken);
    if (args.d === 0) tokens[0] = bos;
    await rewind();
    const input = tokens.map((t, i) => (i === n - 1 ? [t, { generateNext: { token: true } }] : t));
    const start = process.hrtime.bigint();
    await seq.controlledEvaluate(input);
    return Number(process.hrtime.bigint() - start);
  };
  const runTg = async (n) => {
    await rewind();
    let tok = args.d === 0 ? bos : randomToken();
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; ++i) {
      await seq.controlledEvaluate([[tok, { generateNext: { token: true } }]]);
      tok = randomToken();
    }
    return Number(process.hrtime.bigint() - start);
  };
  for (const [kind, n] of [["pp", args.p], ["tg", args.n]]) {
    if (n <= 0) continue;
    const run = kind === "pp" ? runPp : runTg;
    if (args.warmup) await run(kind === "pp" ? n : 1);
    const ns = [];
    for (let i = 0; i < args.r; ++i) ns.push(await run(n));
    const s = stats(ns, n);
    results.push({ kind, n, ns, s, typeK, typeV });
  }
  await context.dispose();
}
const loadAvgEnd = loadAvg();
const out = results.map(({ kind, n, ns, s, typeK, typeV }) => ({
  engine: "llama.cpp (node-llama-cpp 3.21.1)",
  model_filename: args.model,
  model_size: modelSize,
  model_n_params: nParams,
  n_threads: threads,
  test: `${kind}${n}${args.d > 0 ? ` @ d${args.d}` : ""}`,
  n_depth: args.d,
  type_k: typeK.toLowerCase(),
  type_v: typeV.toLowerCase(),
  n_prompt: kind === "pp" ? n : 0,
  n_gen: kind === "tg" ? n : 0,
  reps: args.r,
  avg_ts: s.mean,
  stddev_ts: s.sd,
  samples_ts: s.ts,
  samples_ns: ns,
  load_s: loadS,
  peak_rss_bytes: peakRss(),
  load_avg_start: loadAvgStart,
  load_avg_end: loadAvgEnd,
  flash_attention: args.fa,
  date: new Date().toISOString(),
}));
console.log(JSON.stringify(out, null, 2));
await model.dispose();
await llama.dispose();
