// Reads a GGUF with node-llama-cpp's own reader (a second implementation) and prints what it saw as JSON:
// {"version", "metadata": {flat.key: value}, "tensors": [{"name","dims","type","fileOffset"}]}; 64-bit ints as strings.
import {readGgufFileInfo} from "node-llama-cpp";

const info = await readGgufFileInfo(process.argv[2], {readTensorInfo: true});
const flat = {};
const walk = (prefix, node) => {
  for (const [k, v] of Object.entries(node)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) walk(key, v);
    else flat[key] = v;
  }
};
walk("", info.metadata);
const big = (k, v) => (typeof v === "bigint" ? v.toString() : v);
console.log(JSON.stringify({
  version: info.version,
  metadata: flat,
  tensors: info.tensorInfo.map((t) => ({name: t.name, dims: t.dimensions.map(Number), type: t.ggmlType,
                                        fileOffset: Number(t.fileOffset)})),
}, big));
