#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/gguf/*.gguf and fuzz/corpus/safetensors/*.safetensors.

An encoder independent of src/format (straight from the GGUF v3 spec and the safetensors format), so the
replay test (tests/format/fuzz_corpus_test.cpp) also checks our reader against a second implementation.
Run from the repository root: python3 tests/format/make_fuzz_corpus.py
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GGUF_DIR = os.path.join(ROOT, "fuzz", "corpus", "gguf")
ST_DIR = os.path.join(ROOT, "fuzz", "corpus", "safetensors")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
          U64: "<Q", I64: "<q", F64: "<d"}
# ggml type id -> (block size, bytes per block)
GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
        10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
        24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gval(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def pad(n, a):
    return (a - n % a) % a


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, type_id)] with filler data."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + gval(t, v)
    sizes, offset = [], 0
    for name, dims, tid in tensors:
        bs, bb = GGML[tid]
        n = dims[0] // bs * bb
        for d in dims[1:]:
            n *= d
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<q", d) for d in dims)
        out += struct.pack("<IQ", tid, offset)
        sizes.append(n)
        offset += n + pad(n, alignment)
    out += b"\0" * pad(len(out), alignment)
    for i, n in enumerate(sizes):
        out += bytes((i * 37 + j * 11) & 0xFF for j in range(n)) + b"\0" * pad(n, alignment)
    return out


def safetensors(entries, metadata=None, header_pad=0):
    """entries: [(name, dtype, shape, raw bytes)] laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode() + b" " * header_pad
    return struct.pack("<Q", len(h)) + h + data


def main():
    os.makedirs(GGUF_DIR, exist_ok=True)
    os.makedirs(ST_DIR, exist_ok=True)
    seeds = {
        "empty.gguf": gguf([], []),
        "values.gguf": gguf([
            ("general.architecture", STR, "gemma4"),
            ("t.u8", U8, 200), ("t.i8", I8, -3), ("t.u16", U16, 60000), ("t.i16", I16, -300),
            ("t.u32", U32, 7), ("t.i32", I32, -70000), ("t.f32", F32, 0.25), ("t.bool", BOOL, 1),
            ("t.u64", U64, 1 << 40), ("t.i64", I64, -(1 << 40)), ("t.f64", F64, 1e-6),
            ("tokenizer.ggml.tokens", ARR, (STR, ["<pad>", "<eos>", "<bos>", "\u2581the"])),
            ("tokenizer.ggml.scores", ARR, (F32, [0.0, -1.5, 2.0, 0.125])),
            ("tokenizer.ggml.token_type", ARR, (I32, [3, 3, 3, 1])),
            ("t.flags", ARR, (BOOL, [1, 0])), ("t.u8s", ARR, (U8, [1, 2, 3])),
        ], []),
        "tensors.gguf": gguf([("general.architecture", STR, "gemma4"), ("gemma4.block_count", U32, 1)], [
            ("token_embd.weight", [8, 4], 0), ("blk.0.attn_q.weight", [32, 2], 8),
            ("blk.0.ffn_down_exps.weight", [256, 1, 2], 12), ("blk.0.attn_norm.weight", [8], 30),
            ("blk.0.ffn_up_exps.weight", [256, 1, 1, 1], 14), ("blk.0.attn_k.weight", [32], 2),
        ]),
        "v2_align64.gguf": gguf([("general.alignment", U32, 64), ("general.name", STR, "x")],
                                [("a", [3], 0), ("b", [5, 2], 1)], version=2, alignment=64),
        "align1.gguf": gguf([("general.alignment", U32, 1)], [("a", [3], 24), ("b", [32], 6), ("c", [1], 28)],
                            alignment=1),
    }
    for name, data in seeds.items():
        with open(os.path.join(GGUF_DIR, name), "wb") as f:
            f.write(data)
    st = {
        "dtypes.safetensors": safetensors([
            ("w.f32", "F32", [2, 2], struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)),
            ("w.f16", "F16", [3], struct.pack("<3H", 0x3C00, 0xC000, 0x0001)),
            ("w.bf16", "BF16", [2], struct.pack("<2H", 0x3F80, 0x7F80)),
            ("w.f64", "F64", [1], struct.pack("<d", 0.1)),
            ("i.i64", "I64", [1], struct.pack("<q", -5)), ("i.i32", "I32", [2], struct.pack("<2i", 1, 2)),
            ("i.i16", "I16", [1], struct.pack("<h", 7)), ("i.i8", "I8", [], struct.pack("<b", -1)),
            ("i.u8", "U8", [2, 0], b""), ("b", "BOOL", [1], b"\x01"),
        ], metadata={"format": "pt"}, header_pad=3),
        "empty.safetensors": safetensors([]),
        "model.safetensors": safetensors([
            ("model.embed_tokens.weight", "BF16", [4, 2], struct.pack("<8H", *range(0x3F80, 0x3F88))),
            ("model.norm.weight", "F32", [2], struct.pack("<2f", 1.0, 1.0)),
        ], metadata={"format": "pt", "note": "seed"}),
    }
    for name, data in st.items():
        with open(os.path.join(ST_DIR, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
