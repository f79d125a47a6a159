"""
The PyTorch peer of `npm run bench -- harvest`: PyTorch eager (float32, no autograd) running a Llama
(RMSNorm, rotary embeddings with rotate_half as Hugging Face's modelling code, grouped-query
attention with a causal mask, SwiGLU) from the weights the TypeScript side dequantised and dumped:

    h_0 = W_E[ids]
    per block: a = rms(h) * w1;  q, k, v = a W_Q^T, a W_K^T, a W_V^T  (k, v repeated per head group)
               q, k = rope(q), rope(k);  z = softmax(q k^T / sqrt(d_head) + causal) v;  h = h + z W_O^T
               m = rms(h) * w2;  h = h + (silu(m W_gate^T) * (m W_in^T)) W_out^T
    logits = (rms(h) * w_final) W_U^T

Usage: torch_llama.py WEIGHTS.safetensors --layers N [--logits] [--batch 8] [--len 128] [--reps 2] [--threads 2]
The file's metadata holds the config (d_model, n_heads, n_kv_heads, eps, rope_base, vocab) and, when
tensors `check_ids` [batch, len] with the TypeScript side's results for those ids, `check_hook` (the
residual after the last block run) and `check_logits`, so that the peer's result is compared, not only timed. Prints one JSON line: tokens_s,
peak_rss_mb, max_rel_diff. Only the tensors the run needs are read (the file is memory-mapped).
"""
import argparse
import json
import mmap
import resource
import struct
import time

import numpy as np
import torch

DT = {"F32": np.float32, "I32": np.int32}


def open_safetensors(path):
    f = open(path, "rb")
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (n,) = struct.unpack("<Q", mm[:8])
    header = json.loads(mm[8 : 8 + n])
    meta = header.pop("__metadata__", {})

    def get(name):
        t = header[name]
        a, b = t["data_offsets"]
        arr = np.frombuffer(mm, dtype=DT[t["dtype"]], count=(b - a) // np.dtype(DT[t["dtype"]]).itemsize, offset=8 + n + a)
        return torch.from_numpy(arr.copy()).reshape(t["shape"])

    return meta, get, set(header)


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--logits", action="store_true")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--len", type=int, default=128)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    meta, get, names = open_safetensors(a.weights)
    cfg = json.loads(meta["config"])
    d, nh, nkv, eps, base = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"], cfg["eps"], cfg["rope_base"]
    dh = d // nh
    W = {"embed": get("embed.W_E")}
    blocks = []
    for l in range(a.layers):
        g = lambda s: get(f"blocks.{l}.{s}")
        blocks.append({k: g(k) for k in ["ln1.w", "ln2.w", "attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "mlp.W_gate", "mlp.W_in", "mlp.W_out"]})
    if a.logits:
        W["ln_final"] = get("ln_final.w")
        W["unembed"] = get("unembed.W_U")

    if "check_ids" in names:
        ids = get("check_ids").long()
    else:
        ids = (torch.arange(a.batch)[:, None] * 7919 + torch.arange(a.len)[None, :] * 104729) % cfg["vocab"]
    B, S = ids.shape
    inv = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    freqs = torch.arange(S, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().float(), emb.sin().float()  # [S, dh]
    mask = torch.full((S, S), float("-inf")).triu(1)

    def forward():
        h = W["embed"][ids]  # [B, S, d]
        for w in blocks:
            x = rms(h, w["ln1.w"], eps)
            q = (x @ w["attn.W_Q"].T).view(B, S, nh, dh).transpose(1, 2)  # [B, nh, S, dh]
            k = (x @ w["attn.W_K"].T).view(B, S, nkv, dh).transpose(1, 2)
            v = (x @ w["attn.W_V"].T).view(B, S, nkv, dh).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            att = torch.softmax(q @ k.transpose(-1, -2) / dh**0.5 + mask, dim=-1)
            z = (att @ v).transpose(1, 2).reshape(B, S, nh * dh)
            h = h + z @ w["attn.W_O"].T
            m = rms(h, w["ln2.w"], eps)
            h = h + (torch.nn.functional.silu(m @ w["mlp.W_gate"].T) * (m @ w["mlp.W_in"].T)) @ w["mlp.W_out"].T
        if a.logits:
            return rms(h, W["ln_final"], eps) @ W["unembed"].T
        return h

    with torch.no_grad():
        out = forward()  # warm
        t0 = time.perf_counter()
        for _ in range(a.reps):
            out = forward()
        sec = time.perf_counter() - t0
    diff = None
    check = "check_logits" if a.logits else "check_hook"
    if check in names:
        ref = get(check).reshape(out.shape)
        diff = float((out - ref).abs().max() / ref.abs().max())
    print(json.dumps({"tokens_s": B * S * a.reps / sec, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max_rel_diff": diff}))


if __name__ == "__main__":
    main()
