#!/usr/bin/python3
"""The PyTorch half of docs/FINETUNE.md's round trip, for tests/scripts/finetune_roundtrip.sh.

Needs only Debian's python3-torch (no transformers, no PEFT, no safetensors package): the Gemma 4 text forward pass
below is written from src/model/gemma4/forward.cpp (docs/GEMMA4.md), the LoRA layers and the PEFT adapter files by
hand. Subcommands:

  export-hf GGUF DEMO_DIR OUT_DIR   an f32 Hugging Face checkpoint from a GGUF (the inverse of `fabula convert`,
                                    which only renames and reshapes): model.safetensors, plus config.json and the
                                    tokenizer files from DEMO_DIR
  tokens FABULA VOCAB TEXT_JSONL OUT
                                    rows {ids, prompt_tokens} of `fabula dataset export`'s pre-rendered rows,
                                    tokenized by `fabula tokenize` (the text spells <bos> itself)
  train HF_DIR TOKENS_JSONL MODULES_TSV OUT_DIR
                                    a few LoRA steps on the completion tokens of exported rows; writes a PEFT adapter
                                    (adapter_config.json, adapter_model.safetensors)
  logits HF_DIR IDS OUT [--adapter DIR]
                                    f32 logits of the checkpoint (plus the adapter, unmerged) as safetensors "logits"
  compare A B                       max |a - b| of two "logits" files
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
import sys

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------------------
# safetensors and GGUF, just enough of each


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).float()
    return out


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().to(torch.float32)
        raw = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_gguf_tensors(path):
    """F32 and F16 tensors of a GGUF v3 file, shaped as ggml lists them (dims[0] innermost), as float32."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert data[:4] == b"GGUF", f"{path}: not a GGUF file"
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3, f"{path}: GGUF version {version}"
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, dims, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    out = {}
    for name, dims, typ, off in infos:
        n = math.prod(dims)
        if typ == 0:
            raw, dt = data[base + off:base + off + 4 * n], torch.float32
        elif typ == 1:
            raw, dt = data[base + off:base + off + 2 * n], torch.float16
        else:
            raise SystemExit(f"{path}: tensor {name} has ggml type {typ}; export-hf reads f32 and f16 files")
        out[name] = (torch.frombuffer(bytearray(raw), dtype=dt).float(), dims)
    return out


# GGUF name -> HF name (the tensor table of src/model/gemma4/tensors.cpp; "{}" is the layer).
GGUF_TO_HF = {
    "token_embd.weight": "embed_tokens.weight",
    "output_norm.weight": "norm.weight",
    "blk.{}.attn_norm.weight": "layers.{}.input_layernorm.weight",
    "blk.{}.attn_q.weight": "layers.{}.self_attn.q_proj.weight",
    "blk.{}.attn_k.weight": "layers.{}.self_attn.k_proj.weight",
    "blk.{}.attn_v.weight": "layers.{}.self_attn.v_proj.weight",
    "blk.{}.attn_output.weight": "layers.{}.self_attn.o_proj.weight",
    "blk.{}.attn_q_norm.weight": "layers.{}.self_attn.q_norm.weight",
    "blk.{}.attn_k_norm.weight": "layers.{}.self_attn.k_norm.weight",
    "blk.{}.post_attention_norm.weight": "layers.{}.post_attention_layernorm.weight",
    "blk.{}.ffn_norm.weight": "layers.{}.pre_feedforward_layernorm.weight",
    "blk.{}.ffn_gate.weight": "layers.{}.mlp.gate_proj.weight",
    "blk.{}.ffn_up.weight": "layers.{}.mlp.up_proj.weight",
    "blk.{}.ffn_down.weight": "layers.{}.mlp.down_proj.weight",
    "blk.{}.post_ffw_norm_1.weight": "layers.{}.post_feedforward_layernorm_1.weight",
    "blk.{}.ffn_gate_inp.weight": "layers.{}.router.proj.weight",
    "blk.{}.ffn_gate_inp.scale": "layers.{}.router.scale",
    "blk.{}.pre_ffw_norm_2.weight": "layers.{}.pre_feedforward_layernorm_2.weight",
    "blk.{}.ffn_gate_up_exps.weight": "layers.{}.experts.gate_up_proj",
    "blk.{}.ffn_down_exps.weight": "layers.{}.experts.down_proj",
    "blk.{}.ffn_down_exps.scale": "layers.{}.router.per_expert_scale",
    "blk.{}.post_ffw_norm_2.weight": "layers.{}.post_feedforward_layernorm_2.weight",
    "blk.{}.post_ffw_norm.weight": "layers.{}.post_feedforward_layernorm.weight",
    "blk.{}.layer_output_scale.weight": "layers.{}.layer_scalar",
}


def hf_name(gguf):
    if gguf in GGUF_TO_HF:
        return "model." + GGUF_TO_HF[gguf]
    parts = gguf.split(".")
    if parts[0] == "blk":
        key = ".".join(["blk", "{}"] + parts[2:])
        if key in GGUF_TO_HF:
            return "model." + GGUF_TO_HF[key].replace("{}", parts[1])
    return None


def export_hf(args):
    tensors = read_gguf_tensors(args.gguf)
    out = {}
    for name, (t, dims) in tensors.items():
        if name == "rope_freqs.weight":
            continue  # generated by the converter from config.json
        hf = hf_name(name)
        if hf is None:
            raise SystemExit(f"{args.gguf}: no Hugging Face name for {name}")
        out[hf] = t.reshape(list(reversed(dims)))
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), out, {"format": "pt"})
    with open(os.path.join(args.demo_dir, "config.json")) as f:
        config = json.load(f)
    config["dtype"] = "float32"  # the GGUF's f16 values, held exactly in f32
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"]:
        shutil.copy(os.path.join(args.demo_dir, name), os.path.join(args.out, name))
    print(f"export-hf: {len(out)} tensors -> {args.out}")


# ---------------------------------------------------------------------------------------------------------------
# Gemma 4 text forward pass (f32), with optional LoRA on per-expert modules


def rms(x, w=None, eps=1e-6):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y


def rope(x, inv_freq, n_rot):
    # NeoX halves over the first n_rot dims: dim i pairs with i + n_rot/2; the rest pass through.
    T = x.shape[0]
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    ang = pos * inv_freq[None, :]  # [T, n_rot/2]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    half = n_rot // 2
    a, b, rest = x[..., :half], x[..., half:n_rot], x[..., n_rot:]
    return torch.cat([a * c - b * s, b * c + a * s, rest], dim=-1)


class Gemma4:
    def __init__(self, hf_dir):
        with open(os.path.join(hf_dir, "config.json")) as f:
            self.cfg = json.load(f)
        self.w = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
        c = self.cfg
        self.L = c["num_hidden_layers"]
        self.E = c["hidden_size"]
        self.H = c["num_attention_heads"]
        self.eps = c["rms_norm_eps"]
        self.window = c["sliding_window"]
        self.cap = c.get("final_logit_softcapping") or 0.0
        self.top_k = c["top_k_experts"]
        self.lora = {}  # module name -> (A [r, in], B [out, r], scale)
        rp = c["rope_parameters"]
        self.layers = []
        for l in range(self.L):
            sliding = c["layer_types"][l] == "sliding_attention"
            per = c.get("per_layer_config", {}).get(str(l), {})
            hd = per.get("head_dim", c["head_dim"])
            kv = per.get("num_key_value_heads", c["num_key_value_heads"])
            p = rp["sliding_attention" if sliding else "full_attention"]
            if p.get("rope_type") == "proportional":
                # Every pair of the head, frequencies base^(-2i/hd) for the first partial*hd/2 pairs and 0 after.
                n_rot = hd
                rotated = int(p["partial_rotary_factor"] * hd // 2)
                inv = torch.tensor([p["rope_theta"] ** (-2 * i / hd) if i < rotated else 0.0
                                    for i in range(hd // 2)], dtype=torch.float32)
            else:
                n_rot = hd
                inv = 1.0 / (p["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
            self.layers.append(dict(sliding=sliding, hd=hd, kv=kv, inv=inv.float(), n_rot=n_rot))

    def p(self, name):
        return self.w["model." + name]

    def expert_linear(self, x, W, module):
        y = x @ W.T
        if module in self.lora:
            A, B, s = self.lora[module]
            y = y + s * ((x @ A.T) @ B.T)
        return y

    def forward(self, ids):
        T, E, H = len(ids), self.E, self.H
        x = self.p("embed_tokens.weight")[torch.tensor(ids)] * math.sqrt(E)
        i = torch.arange(T)
        causal = i[None, :] <= i[:, None]
        for l in range(self.L):
            info = self.layers[l]
            hd, KV = info["hd"], info["kv"]
            pre = f"layers.{l}."
            a = rms(x, self.p(pre + "input_layernorm.weight"), self.eps)
            q = (a @ self.p(pre + "self_attn.q_proj.weight").T).view(T, H, hd)
            k = (a @ self.p(pre + "self_attn.k_proj.weight").T).view(T, KV, hd)
            vname = "model." + pre + "self_attn.v_proj.weight"
            v = (a @ self.w[vname].T).view(T, KV, hd) if vname in self.w else k  # K=V layers: the raw k
            q = rope(rms(q, self.p(pre + "self_attn.q_norm.weight"), self.eps), info["inv"], info["n_rot"])
            k2 = rope(rms(k, self.p(pre + "self_attn.k_norm.weight"), self.eps), info["inv"], info["n_rot"])
            v = rms(v, None, self.eps)
            g = H // KV
            kk = k2.repeat_interleave(g, dim=1)  # [T, H, hd]
            vv = v.repeat_interleave(g, dim=1)
            scores = torch.einsum("thd,shd->hts", q, kk)  # scale 1.0: q and k are normed
            mask = causal
            if info["sliding"]:
                mask = mask & (i[None, :] > i[:, None] - self.window)
            scores = scores.masked_fill(~mask[None], float("-inf"))
            attn = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), vv).reshape(T, H * hd)
            o = attn @ self.p(pre + "self_attn.o_proj.weight").T
            x = x + rms(o, self.p(pre + "post_attention_layernorm.weight"), self.eps)

            a = rms(x, self.p(pre + "pre_feedforward_layernorm.weight"), self.eps)
            dense = (F.gelu(a @ self.p(pre + "mlp.gate_proj.weight").T, approximate="tanh")
                     * (a @ self.p(pre + "mlp.up_proj.weight").T)) @ self.p(pre + "mlp.down_proj.weight").T
            if ("model." + pre + "router.proj.weight") in self.w:
                dense = rms(dense, self.p(pre + "post_feedforward_layernorm_1.weight"), self.eps)
                r = rms(x, None, self.eps) * self.p(pre + "router.scale") * (E ** -0.5)
                probs = torch.softmax(r @ self.p(pre + "router.proj.weight").T, dim=-1)
                top_w, top_i = torch.topk(probs, self.top_k, dim=-1)
                top_w = top_w / top_w.sum(-1, keepdim=True) * self.p(pre + "router.per_expert_scale")[top_i]
                z = rms(x, self.p(pre + "pre_feedforward_layernorm_2.weight"), self.eps)
                gate_up, down = self.p(pre + "experts.gate_up_proj"), self.p(pre + "experts.down_proj")
                FE = down.shape[2]
                moe = torch.zeros_like(x)
                for e in range(gate_up.shape[0]):
                    rows, slot = (top_i == e).nonzero(as_tuple=True)
                    if len(rows) == 0:
                        continue
                    gu = self.expert_linear(z[rows], gate_up[e], f"model.{pre}experts.gate_up.{e}")
                    act = F.gelu(gu[:, :FE], approximate="tanh") * gu[:, FE:]
                    out = self.expert_linear(act, down[e], f"model.{pre}experts.down.{e}")
                    moe = moe.index_add(0, rows, out * top_w[rows, slot][:, None])
                dense = dense + rms(moe, self.p(pre + "post_feedforward_layernorm_2.weight"), self.eps)
            o = rms(dense, self.p(pre + "post_feedforward_layernorm.weight"), self.eps)
            scalar = self.w.get("model." + pre + "layer_scalar")
            x = (x + o) * (scalar if scalar is not None else 1.0)
        logits = rms(x, self.p("norm.weight"), self.eps) @ self.p("embed_tokens.weight").T
        if self.cap:
            logits = self.cap * torch.tanh(logits / self.cap)
        return logits


def load_adapter(model, adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    scale = cfg["lora_alpha"] / cfg["r"]
    t = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    for name in t:
        if name.endswith(".lora_A.weight"):
            module = name[len("base_model.model."):-len(".lora_A.weight")]
            model.lora[module] = (t[name], t[name.replace("lora_A", "lora_B")], scale)


# ---------------------------------------------------------------------------------------------------------------


def tokens(args):
    rows = [json.loads(l) for l in open(args.text_jsonl) if l.strip()]

    def encode(texts):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        try:
            out = subprocess.run([args.fabula, "tokenize", "--vocab", args.vocab, "--jsonl", f.name, "--no-bos"],
                                 check=True, capture_output=True, text=True).stdout
        finally:
            os.unlink(f.name)
        return [json.loads(l)["ids"] for l in out.splitlines() if l.strip()]

    full, prompts = encode([r["text"] for r in rows]), encode([r["prompt"] for r in rows])
    with open(args.out, "w") as f:
        for ids, p in zip(full, prompts):
            assert ids[:len(p)] == p, "the prompt's tokens are not a prefix of the row's"
            f.write(json.dumps({"ids": ids, "prompt_tokens": len(p)}) + "\n")
    print(f"tokens: {len(rows)} rows, {sum(len(i) for i in full)} tokens")


def train(args):
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = Gemma4(args.hf_dir)
    for wt in model.w.values():
        wt.requires_grad_(False)
    modules = []
    with open(args.modules) as f:
        for line in f:
            name, n_in, n_out = line.split()
            modules.append((name, int(n_in), int(n_out)))
    params = []
    for name, n_in, n_out in modules:
        # PEFT's initialisation: A random (Kaiming-uniform), B zero, so step 0 is the base model.
        A = torch.empty(args.rank, n_in)
        torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))
        B = torch.zeros(n_out, args.rank)
        A.requires_grad_(True)
        B.requires_grad_(True)
        model.lora[name] = (A, B, args.alpha / args.rank)
        params += [A, B]
    rows = [json.loads(l) for l in open(args.tokens) if l.strip()]

    def row_loss(row):
        ids, n_prompt = row["ids"][:args.max_len], row["prompt_tokens"]
        logits = model.forward(ids[:-1])
        target = torch.tensor(ids[1:])
        mask = torch.arange(len(ids) - 1) >= n_prompt - 1  # loss on the completion tokens only
        return F.cross_entropy(logits[mask], target[mask])

    def mean_loss(sample):
        with torch.no_grad():
            return sum(row_loss(r).item() for r in sample) / len(sample)

    seen = rows[:min(len(rows), args.steps, 4)]  # rows the steps train on, measured before and after
    before = mean_loss(seen)
    opt = torch.optim.Adam(params, lr=args.lr)
    for step in range(args.steps):
        loss = row_loss(rows[step % len(rows)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step + 1}/{args.steps}: loss {loss.item():.4f}", flush=True)
    after = mean_loss(seen)
    os.makedirs(args.out, exist_ok=True)
    tensors = {}
    for name, _, _ in modules:
        A, B, _ = model.lora[name]
        tensors[f"base_model.model.{name}.lora_A.weight"] = A
        tensors[f"base_model.model.{name}.lora_B.weight"] = B
    write_safetensors(os.path.join(args.out, "adapter_model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(args.out, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": args.hf_dir,
                   "r": args.rank, "lora_alpha": args.alpha, "lora_dropout": 0.0, "bias": "none",
                   "use_rslora": False, "target_modules": [m[0] for m in modules]}, f, indent=2)
    print(f"train: {len(modules)} modules, rank {args.rank}, {args.steps} steps; completion loss on {len(seen)} "
          f"trained rows {before:.4f} -> {after:.4f}")


def logits(args):
    model = Gemma4(args.hf_dir)
    if args.adapter:
        load_adapter(model, args.adapter)
    ids = [int(t) for t in args.ids.split(",")]
    with torch.no_grad():
        out = model.forward(ids)
    write_safetensors(args.out, {"logits": out})


def compare(args):
    a, b = read_safetensors(args.a)["logits"], read_safetensors(args.b)["logits"]
    if a.shape != b.shape:
        raise SystemExit(f"shapes differ: {list(a.shape)} vs {list(b.shape)}")
    print(f"{(a - b).abs().max().item():.6g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("export-hf")
    p.add_argument("gguf")
    p.add_argument("demo_dir")
    p.add_argument("out")
    p = sub.add_parser("tokens")
    p.add_argument("fabula")
    p.add_argument("vocab")
    p.add_argument("text_jsonl")
    p.add_argument("out")
    p = sub.add_parser("train")
    p.add_argument("hf_dir")
    p.add_argument("tokens", help="rows {ids, prompt_tokens}")
    p.add_argument("modules", help="`fabula lora plan --list` output")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--alpha", type=float, default=8.0)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("logits")
    p.add_argument("hf_dir")
    p.add_argument("ids")
    p.add_argument("out")
    p.add_argument("--adapter")
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    args = ap.parse_args()
    {"export-hf": export_hf, "tokens": tokens, "train": train, "logits": logits, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
