// Prompt processing through `fabula serve` at a given chunk size: one prompt of N random ids (BOS first, seeded),
// one token out, and the forward steps it took (from the server's -v step log). It measures what
// --ubatch-size / --batch-size trade: a longer chunk reads the weights fewer times, and holds every other slot back
// for its whole step.
//
//   node bench/multi-stream/chunks.mjs --model F.gguf [--fabula build/fabula] [--prompt 1536] [-t 2]
//        [--ubatch 512] [--batch 516] [--parallel 2]
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const a = { model: "", fabula: path.join(repo, "build/fabula"), prompt: 1536, t: 2, ubatch: 512, batch: 516, parallel: 2 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^-+/, ""), v = argv[i + 1];
  if (!(k in a) || v === undefined) throw new Error(`unknown or incomplete argument ${argv[i]} (see the usage at the top)`);
  a[k] = typeof a[k] === "number" ? +v : v;
}
if (!a.model) throw new Error("--model is required");

const server = spawn(a.fabula, ["-v", "serve", "--model", a.model, "--port", "0", "-t", `${a.t}`, "--parallel", `${a.parallel}`,
                                "-c", `${a.prompt + 64}`, "--ubatch-size", `${a.ubatch}`, "--batch-size", `${a.batch}`],
                     { stdio: ["ignore", "pipe", "pipe"] });
let out = "", log = "";
server.stderr.on("data", (d) => { log += d; });
const exited = new Promise((resolve) => server.once("exit", resolve));
const port = await Promise.race([
  new Promise((resolve) => server.stdout.on("data", (d) => {
    out += d;
    const m = out.match(/listening on https?:\/\/[^:]+:(\d+)/);
    if (m && out.includes("model ready")) resolve(+m[1]);
  })),
  exited.then((code) => { throw new Error(`fabula serve exited ${code}: ${log.slice(-600)}`); }),
]);

function post(route, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: route, agent: false,
                               headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } },
      (res) => { let s = ""; res.on("data", (d) => { s += d; }); res.on("end", () => resolve(JSON.parse(s))); });
    req.on("error", reject);
    req.end(data);
  });
}

try {
  const models = await new Promise((resolve) => http.get({ host: "127.0.0.1", port, path: "/v1/models", agent: false },
    (res) => { let s = ""; res.on("data", (d) => { s += d; }); res.on("end", () => resolve(JSON.parse(s))); }));
  const vocab = models.data?.[0]?.meta?.n_vocab ?? 2000;
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const span = Math.max(16, Math.min(vocab, 32000) - 16);
  const prompt = [2, ...Array.from({ length: a.prompt - 1 }, () => 16 + Math.floor(rand() * span))];
  const r = await post("/completion", { prompt, n_predict: 1, cache_prompt: false, temperature: 0 });
  if (!r.timings) throw new Error(JSON.stringify(r).slice(0, 400));
  await new Promise((resolve) => setTimeout(resolve, 100));  // the last step's log line
  const steps = log.split("\n").filter((l) => l.includes("step:")).map((l) => +l.match(/decode ([0-9.]+)/)[1]);
  console.log(`ubatch ${a.ubatch}, batch ${a.batch}: ${a.prompt} prompt tokens in ${r.timings.prompt_ms.toFixed(0)} ms ` +
              `(${(a.prompt / r.timings.prompt_ms * 1e3).toFixed(1)} t/s), ${steps.length} steps of ` +
              `${steps.map((s) => s.toFixed(0)).join(", ")} ms`);
} finally {
  server.kill("SIGTERM");
  await exited;
}
