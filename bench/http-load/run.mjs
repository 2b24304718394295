// Load figures of docs/SECURITY.md: `fabula serve` while clients misbehave. Starts the server on a free loopback
// port, then measures
//   1. /health latency with nothing else going on, and while N connections sit halfway through their headers
//      (spread over A source addresses, 127.0.0.2 ..., so the per-client cap does not simply turn them away);
//   2. a streaming completion started before the slow clients: its token rate before, while they are open, after;
//   3. an 8 MiB request body of which only the first 64 KiB is sent: the status that comes back, and when.
// Usage: node bench/http-load/run.mjs [--fabula build/fabula] [--model M] [--slow 256] [--addresses 8]
//        [--threads 2] [--tokens 600] [--runs 1] [--samples 20] [--json OUT.json]
// Point --fabula at an older build to measure it the same way (a /health that does not answer in 15 s is reported).
import { spawn } from 'node:child_process';
import net from 'node:net';
import http from 'node:http';
import fs from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
  return acc;
}, []));
const fabula = args.fabula || 'build/fabula';
const nSlow = Number(args.slow || 256);
const nAddr = Number(args.addresses || 8);
const threads = String(args.threads || 2);
const HEALTH_TIMEOUT_MS = 15000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

function startServer() {
  const a = ['serve', '--port', '0', '-t', threads];
  if (args.model) a.push('--model', args.model);
  const p = spawn(fabula, a, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '', port = 0;
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on https?:\/\/[^:]+:(\d+)/);
      if (m) port = Number(m[1]);
      if (port && out.includes('model ready')) resolve({ p, port });
    });
    p.stderr.on('data', () => {});
    p.on('exit', (code) => reject(new Error(`fabula serve exited ${code}: ${out}`)));
  });
}

// One GET /health on a fresh connection: milliseconds, or Infinity when no answer within the timeout.
function health(port) {
  return new Promise((resolve) => {
    const t0 = now();
    const req = http.get({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: HEALTH_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? now() - t0 : Infinity));
    });
    req.on('timeout', () => { req.destroy(); resolve(Infinity); });
    req.on('error', () => resolve(Infinity));
  });
}
async function healthSamples(port, n) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await health(port));
  return xs;
}

// A streaming /completion; resolves to the arrival time of each token event.
function stream(port, nPredict, onToken) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt: 'Once upon a time', n_predict: nPredict, ignore_eos: true, stream: true, temperature: 0 });
    const times = [];
    const req = http.request({ host: '127.0.0.1', port, path: '/completion', method: 'POST', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i); buf = buf.slice(i + 2);
          if (ev.startsWith('data: ') && !JSON.parse(ev.slice(6)).stop) { times.push(now()); onToken(times.length); }
        }
      });
      res.on('end', () => resolve(times));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function openSlow(port, i) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${2 + (i % nAddr)}` }, () => {
      s.write('POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl');
      resolve(s);
    });
    s.on('error', () => resolve(s));
  });
}

// Headers announcing 8 MiB and the first 64 KiB of it, then nothing: an answer proves the server did not wait to
// read (or buffer) the body. Resolves to the status and the time it took.
function bigBody(port) {
  return new Promise((resolve) => {
    let answer = '', done = false;
    const t0 = now();
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(`POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${8 << 20}\r\n\r\n`);
      s.write(Buffer.alloc(64 << 10, 97));
    });
    const finish = () => { if (!done) { done = true; resolve({ status: answer.split(' ')[1] || 'none', sentBytes: 64 << 10, ms: now() - t0 }); s.destroy(); } };
    s.on('data', (d) => { answer += d; if (answer.includes('\r\n')) finish(); });
    s.on('error', finish);
    s.on('close', finish);
    setTimeout(finish, 30000);
  });
}

const fmtMs = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : `no answer in ${HEALTH_TIMEOUT_MS / 1000} s`);
const rate = (ts) => (ts.length > 1 ? (ts.length - 1) / ((ts[ts.length - 1] - ts[0]) / 1000) : NaN);

async function run(port) {
  const idle = await healthSamples(port, 20);
  // A stream of N tokens: the slow clients connect at N/3 and leave at 2N/3, so its rate can be compared in three
  // windows: before, while they are open, after (the machine's own noise shows as before vs after).
  const nPredict = Number(args.tokens || 600);
  const marks = {};
  const reached = (n) => new Promise((r) => { marks[n] = r; });
  const atThird = reached(Math.floor(nPredict / 3)), atTwoThirds = reached(Math.floor((2 * nPredict) / 3));
  const streaming = stream(port, nPredict, (n) => { if (marks[n]) marks[n](); });
  await atThird;
  const slow = [];
  for (let i = 0; i < nSlow; i++) slow.push(await openSlow(port, i));
  const openAt = now();
  await sleep(100);
  const during = await healthSamples(port, Number(args.samples || 20));
  await atTwoThirds;
  const closeAt = now();
  const stillOpen = slow.filter((s) => !s.destroyed && s.readyState === 'open').length;
  for (const s of slow) s.destroy();
  const times = await streaming;
  const big = await bigBody(port);
  const win = (a, b) => times.filter((t) => t >= a && t < b);
  return {
    health_idle_ms: { median: median(idle), max: Math.max(...idle) },
    health_with_slow_ms: { median: median(during), max: Math.max(...during), unanswered: during.filter((x) => !Number.isFinite(x)).length },
    slow_still_open_at_end: stillOpen,
    stream_tokens: times.length,
    tok_s: { before: rate(win(times[0], openAt)), while_slow_open: rate(win(openAt, closeAt)), after: rate(win(closeAt, Infinity)) },
    body_8mib: big,
  };
}

const { p: server, port } = await startServer();
try {
  const runs = [];
  for (let r = 0; r < Number(args.runs || 1); r++) {
    const x = await run(port);
    runs.push(x);
    console.log(`run ${r + 1}: /health idle median ${fmtMs(x.health_idle_ms.median)} (max ${fmtMs(x.health_idle_ms.max)}); ` +
      `with ${nSlow} slow-header conns open (${x.slow_still_open_at_end} still open at the end): median ${fmtMs(x.health_with_slow_ms.median)}, max ${fmtMs(x.health_with_slow_ms.max)}`);
    console.log(`       stream ${x.stream_tokens} tokens: ${x.tok_s.before.toFixed(1)} tok/s before, ${x.tok_s.while_slow_open.toFixed(1)} while open, ${x.tok_s.after.toFixed(1)} after; ` +
      `8 MiB body announced, 64 KiB sent: HTTP ${x.body_8mib.status} after ${x.body_8mib.ms.toFixed(1)} ms`);
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ fabula, slow_connections: nSlow, source_addresses: nAddr, runs }, null, 2));
} finally {
  server.kill('SIGTERM');
}
