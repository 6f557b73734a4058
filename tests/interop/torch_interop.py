"""PyTorch side of the interop test: exports nn.Embedding states for emb to load, and checks
the tables emb wrote. Uses only torch and numpy (Debian 12 packages no safetensors module), so
safetensors files are written and read by hand: u64 header length, JSON header, data.

  torch_interop.py export DIR   writes DIR/torch_*.npy, DIR/torch.safetensors, DIR/expected_*.bin
  torch_interop.py import DIR   reads DIR/emb.safetensors and DIR/emb_*.npy, compares with
                                DIR/emb_expected_*.bin and with torch's own lookups
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: move the bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata} if metadata else {}
    offset = 0
    blobs = []
    for name, t in tensors:
        b = raw_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        chunk = bytearray(body[begin:end])
        if dt == torch.bfloat16:
            t = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(chunk, dtype=dt)
        out[name] = t.reshape(e["shape"])
    return out, header.get("__metadata__", {})


def export(d):
    torch.manual_seed(1913)
    emb = torch.nn.Embedding(1000, 33, padding_idx=7)
    w = emb.weight.detach()
    # .npy through numpy, in three dtypes numpy has.
    np.save(f"{d}/torch_f32.npy", w.numpy())
    np.save(f"{d}/torch_f64.npy", w.double().numpy())
    np.save(f"{d}/torch_f16.npy", w.half().numpy())
    # safetensors by hand: the state dict, reduced-precision copies and integer tensors.
    ids = torch.tensor([3, 999, 7, 0, 3], dtype=torch.int64)
    write_safetensors(f"{d}/torch.safetensors",
                      [("weight", w), ("weight_bf16", w.bfloat16()), ("weight_f16", w.half()),
                       ("ids", ids), ("small", torch.arange(-5, 5, dtype=torch.int8)),
                       ("bytes", torch.arange(0, 250, 25, dtype=torch.uint8))],
                      {"format": "pt", "source": "torch.nn.Embedding"})
    # What emb must reproduce: the raw bytes and torch's lookups.
    for name, t in [("f32", w), ("f64", w.double()), ("f16", w.half()), ("bf16", w.bfloat16())]:
        with open(f"{d}/expected_{name}.bin", "wb") as f:
            f.write(raw_bytes(t))
    with torch.no_grad():
        with open(f"{d}/expected_lookup.bin", "wb") as f:
            f.write(raw_bytes(emb(ids)))
        bag = torch.nn.EmbeddingBag.from_pretrained(w, mode="sum", padding_idx=7)
        with open(f"{d}/expected_bag.bin", "wb") as f:
            f.write(raw_bytes(bag(ids, torch.tensor([0, 2], dtype=torch.int64))))


def check(what, got, want):
    if got.dtype != want.dtype or tuple(got.shape) != tuple(want.shape) or raw_bytes(got) != raw_bytes(want):
        print(f"MISMATCH {what}: {got.dtype} {tuple(got.shape)} vs {want.dtype} {tuple(want.shape)}")
        sys.exit(1)
    print(f"ok {what}")


def import_(d):
    def expected(name, dtype, shape):
        with open(f"{d}/emb_expected_{name}.bin", "rb") as f:
            b = bytearray(f.read())
        if dtype == torch.bfloat16:
            return torch.frombuffer(b, dtype=torch.int16).view(torch.bfloat16).reshape(shape)
        return torch.frombuffer(b, dtype=dtype).reshape(shape)

    tensors, meta = read_safetensors(f"{d}/emb.safetensors")
    if meta.get("writer") != "emb":
        print(f"MISMATCH metadata {meta}")
        sys.exit(1)
    shape = tuple(tensors["weight"].shape)
    check("safetensors F32", tensors["weight"], expected("f32", torch.float32, shape))
    check("safetensors BF16", tensors["weight_bf16"], expected("bf16", torch.bfloat16, shape))
    check("safetensors F16", tensors["weight_f16"], expected("f16", torch.float16, shape))
    check("safetensors I64", tensors["ids"], expected("ids", torch.int64, (4,)))
    check("npy f32", torch.from_numpy(np.load(f"{d}/emb_f32.npy")), expected("f32", torch.float32, shape))
    check("npy f16", torch.from_numpy(np.load(f"{d}/emb_f16.npy")), expected("f16", torch.float16, shape))
    # The table serves torch's lookups as emb's do.
    emb = torch.nn.Embedding.from_pretrained(tensors["weight"].clone())
    with torch.no_grad():
        got = emb(tensors["ids"])
    check("lookup", got, expected("lookup", torch.float32, tuple(got.shape)))


if __name__ == "__main__":
    {"export": export, "import": import_}[sys.argv[1]](sys.argv[2])
