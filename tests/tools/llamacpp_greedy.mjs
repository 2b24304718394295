// Greedy continuation of token ids with llama.cpp (node-llama-cpp 3.21.1, CPU): prints the generated ids as JSON.
//   node tests/tools/llamacpp_greedy.mjs MODEL.gguf 2,651,1234 [N=32]
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [model_path, ids_text, n_text] = process.argv.slice(2);
if (!model_path || !ids_text) {
  console.error("usage: node tests/tools/llamacpp_greedy.mjs MODEL.gguf ID,ID,... [N]");
  process.exit(2);
}
const prompt = ids_text.split(",").map((s) => Number(s));
const n = Number(n_text ?? 32);
// One thread: the demo model is tiny, and more threads only spin against other work on a shared machine.
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });
const model = await llama.loadModel({ modelPath: model_path, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: Math.max(256, prompt.length + n + 8), sequences: 1, threads: { ideal: 1, min: 1 },
});
const seq = context.getSequence();
const out = [];
for await (const token of seq.evaluate(prompt, { temperature: 0 })) {
  out.push(token);
  if (out.length >= n) break;
}
console.log(JSON.stringify(out));
process.exit(0);  // disposing can hang on some builds; nothing is left to flush
