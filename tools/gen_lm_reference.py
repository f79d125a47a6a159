"""Float64 PyTorch reference for the transformer families: tiny random checkpoints laid out as Hugging
Face checkpoints (config.json + safetensors, real tensor names and layouts), one tiny GGUF of the llama
case, and the value of every hook for a fixed input, under test/fixtures/lm/<case>/.

usage: /usr/bin/python3 tools/gen_lm_reference.py            (rewrites test/fixtures/lm/, deterministic)

Written from the papers and the math of transformers' modelling files (gpt2, llama, qwen2, qwen3,
gemma2, gemma3, gpt_neox) and llama.cpp's convert_hf_to_gguf.py; no code copied. Every weight is
first rounded to its storage dtype (float32, bfloat16 or float16); the forward pass then runs in
float64 from those stored values; hooks are written as float32.

The forward pass, per layer (d = head dim, positions p = 0..S-1, no padding, batch of 2):
  embed      x0 = E[ids]                       (Gemma: x0 = E[ids] * sqrt(hidden_size); GPT-2: + P[p])
  norms      LayerNorm(x) = (x - mean) / sqrt(var + eps) * w + b           (GPT-2, NeoX; var biased)
             RMSNorm(x)   = x / sqrt(mean(x^2) + eps) * w                  (Llama, Qwen2, Qwen3)
             Gemma RMSNorm = x / sqrt(mean(x^2) + eps) * (1 + w)           (Gemma2, Gemma3)
  attention  q = h Wq^T (+ bq), k, v alike; Qwen3/Gemma3: q, k <- RMSNorm over d per head;
             rotary (rotate-half form): for i < r/2, with r rotary dims of each head (r = d, NeoX:
             r = d * rotary_pct), inv_freq_i = theta^(-2i/r):
               (x_i, x_{i+r/2}) <- (x_i cos(p f_i) - x_{i+r/2} sin(p f_i), x_{i+r/2} cos(p f_i) + x_i sin(p f_i))
             llama3 rope_scaling changes f_i as Llama 3.1 does (wavelength bands, smooth interpolation);
             Gemma3: sliding layers use rope_local_base_freq, full layers rope_theta.
             scores = q k^T * scale (scale = d^-1/2; Gemma: query_pre_attn_scalar^-1/2);
             Gemma2: scores <- cap * tanh(scores / cap) (attn_logit_softcapping);
             key j is visible from query i iff j <= i and, on sliding layers, i - j < sliding_window;
             pattern = softmax over visible keys; z = pattern v per head; attn_out = z Wo^T (+ bo)
             (Gemma: then post_attention_layernorm). GQA: query head h reads kv head h // (H / H_kv).
  mlp        gated (Llama, Qwen, Gemma): pre = h Wgate^T, post = act(pre) * (h Wup^T), out = post Wdown^T
             (act = silu; Gemma: gelu tanh form, then post_feedforward_layernorm)
             plain (GPT-2 gelu_new = tanh form, NeoX gelu = erf form): pre = h W1 + b1, post = act(pre)
  residual   sequential: mid = resid_pre + attn_out(ln1(resid_pre)); post = mid + mlp_out(ln2(mid))
             NeoX parallel: post = resid_pre + attn_out(ln1(resid_pre)) + mlp_out(ln2(resid_pre))
  logits     ln_final(x) W_U^T (tied: W_U = E); Gemma2: logits <- 30 * tanh(logits / 30)

Hooks (TransformerLens names and shapes; the TypeScript side uses the same conventions):
  hook_embed [b, S, D] what enters the residual stream from the tokens (Gemma: already scaled by
    sqrt(D); with float32 storage and D = 64 the scale 8 is exact, so HF's rounding of the scale to
    the weight dtype changes nothing); GPT-2 also hook_pos_embed [b, S, D];
  blocks.L.hook_resid_pre, ln1.hook_normalized (the whole norm output incl. weight and bias = the
    attention's input), attn.hook_q [b, S, H, d], attn.hook_k / attn.hook_v [b, S, H_kv, d] (q and k
    BEFORE rotary, AFTER the q/k norms), attn.hook_pattern [b, H, S_q, S_k] (after softmax; masked
    entries 0), attn.hook_z [b, S, H, d] (pattern @ v, before o_proj), hook_attn_out (exactly what is
    added to the residual, incl. biases and Gemma's post-norm), hook_resid_mid (absent for NeoX),
    ln2.hook_normalized (the MLP's input; NeoX: norm of resid_pre), mlp.hook_pre (gated: the gate's
    pre-activation), mlp.hook_post (gated: act(gate) * up, the down projection's input), hook_mlp_out,
    hook_resid_post; then ln_final.hook_normalized and logits [b, S, vocab] (after Gemma2's capping).

Self-checks run on every generation: a loop-based attention and rotary (per query, per pair)
recomputes every hook of every case; the GGUF is read back by an independent reader and run with
llama.cpp's adjacent-pair rotary on its permuted Q/K, giving the llama case's hooks.
"""
import json
import math
import os
import shutil
import struct

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "lm")
BATCH, SEQ, VOCAB, HIDDEN = 2, 10, 300, 64
STORE = {  # storage dtype -> (torch dtype, safetensors dtype name)
    "float32": (torch.float32, "F32"),
    "bfloat16": (torch.bfloat16, "BF16"),
    "float16": (torch.float16, "F16"),
}


# ---------------------------------------------------------------- weights


class Gen:
    """Deterministic random weights, rounded to the storage dtype and kept as float64."""

    def __init__(self, seed, dtype, flush=0.0):
        self.g = torch.Generator().manual_seed(seed)
        self.dtype = dtype
        self.flush = flush  # |w| below this becomes 0 (keeps bf16 values exact in f16 for the GGUF)

    def randn(self, shape, scale, mean=0.0):
        w = torch.randn(*shape, generator=self.g, dtype=torch.float64) * scale + mean
        if self.flush > 0:
            w = torch.where(w.abs() < self.flush, torch.zeros_like(w), w)
        return w.to(STORE[self.dtype][0]).double()

    def linear(self, out_f, in_f, gain=1.0):  # [out, in]
        return self.randn((out_f, in_f), gain / math.sqrt(in_f))

    def norm(self, n, gemma=False):  # weights not all ones; Gemma stores w of (1 + w)
        return self.randn((n,), 0.2, 0.0 if gemma else 1.0)

    def bias(self, n):
        return self.randn((n,), 0.1)


# ---------------------------------------------------------------- primitives


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps, gemma=False):
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
    return y * (1.0 + w) if gemma else y * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def silu(x):
    return x * torch.sigmoid(x)


def inv_freqs(rot_dims, theta, scaling=None):
    """inv_freq_i = theta^(-2i/r), i < r/2; with llama3 scaling as Llama 3.1 defines it."""
    f = [theta ** (-2.0 * i / rot_dims) for i in range(rot_dims // 2)]
    if scaling is None:
        return f
    assert scaling["rope_type"] == "llama3"
    factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    out = []
    for fi in f:
        wavelen = 2 * math.pi / fi
        if wavelen < old / hi:  # high frequency: kept
            out.append(fi)
        elif wavelen > old / lo:  # low frequency: divided by factor
            out.append(fi / factor)
        else:  # in between: interpolated
            s = (old / wavelen - lo) / (hi - lo)
            out.append((1 - s) * fi / factor + s * fi)
    return out


def rope_batched(x, freqs):
    """x: [b, S, heads, d]; rotate-half rotary on the first len(freqs)*2 dims of each head."""
    r = 2 * len(freqs)
    pos = torch.arange(x.shape[1], dtype=torch.float64)
    ang = pos[:, None] * torch.tensor(freqs, dtype=torch.float64)[None, :]  # [S, r/2]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    xr, xp = x[..., :r], x[..., r:]
    rot = torch.cat([-xr[..., r // 2 :], xr[..., : r // 2]], -1)
    return torch.cat([xr * cos + rot * sin, xp], -1)


def rope_loop(x, freqs, adjacent=False):
    """Same rotation written per position and pair; adjacent=True pairs (2i, 2i+1) as llama.cpp."""
    out = x.clone()
    half = len(freqs)
    for p in range(x.shape[1]):
        for i, f in enumerate(freqs):
            c, s = math.cos(p * f), math.sin(p * f)
            a, b = (2 * i, 2 * i + 1) if adjacent else (i, i + half)
            x1, x2 = x[:, p, :, a], x[:, p, :, b]
            out[:, p, :, a] = x1 * c - x2 * s
            out[:, p, :, b] = x2 * c + x1 * s
    return out


def attend_batched(q, k, v, scale, softcap=None, window=None):
    """q: [b, S, H, d], k/v: [b, S, Hkv, d] -> pattern [b, H, S, S], z [b, S, H, d]."""
    rep = q.shape[2] // k.shape[2]
    kk = k.repeat_interleave(rep, dim=2)
    vv = v.repeat_interleave(rep, dim=2)
    s = torch.einsum("bqhd,bkhd->bhqk", q, kk) * scale
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    S = q.shape[1]
    i = torch.arange(S)[:, None]
    j = torch.arange(S)[None, :]
    visible = j <= i
    if window is not None:
        visible = visible & (i - j < window)
    s = s.masked_fill(~visible, float("-inf"))
    pattern = torch.softmax(s, -1)
    z = torch.einsum("bhqk,bkhd->bqhd", pattern, vv)
    return pattern, z


def attend_loop(q, k, v, scale, softcap=None, window=None):
    """Per batch, head and query: the same attention with explicit loops and exp."""
    B, S, H, d = q.shape
    group = H // k.shape[2]
    pattern = torch.zeros(B, H, S, S, dtype=torch.float64)
    z = torch.zeros(B, S, H, d, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            g = h // group
            for i in range(S):
                lo = 0 if window is None else max(0, i - window + 1)
                sc = []
                for j in range(lo, i + 1):
                    t = float(torch.dot(q[b, i, h], k[b, j, g])) * scale
                    if softcap is not None:
                        t = softcap * math.tanh(t / softcap)
                    sc.append(t)
                m = max(sc)
                e = [math.exp(t - m) for t in sc]
                tot = sum(e)
                for n, j in enumerate(range(lo, i + 1)):
                    pattern[b, h, i, j] = e[n] / tot
                    z[b, i, h] += pattern[b, h, i, j] * v[b, j, g]
    return pattern, z


# ---------------------------------------------------------------- families
# Each forward reads its weights by their checkpoint names, so the layouts are exercised.


def heads(x, n):  # [b, S, n*d] -> [b, S, n, d]
    return x.reshape(x.shape[0], x.shape[1], n, -1)


def attention_hooks(hk, L, hq, kq, vq, pattern, z):
    hk[f"blocks.{L}.attn.hook_q"] = hq
    hk[f"blocks.{L}.attn.hook_k"] = kq
    hk[f"blocks.{L}.attn.hook_v"] = vq
    hk[f"blocks.{L}.attn.hook_pattern"] = pattern
    hk[f"blocks.{L}.attn.hook_z"] = z


def forward_gpt2(cfg, W, ids, attend, rope):
    del rope
    hk = {}
    H, eps = cfg["n_head"], cfg["layer_norm_epsilon"]
    S = ids.shape[1]
    x = W["wte.weight"][ids]
    hk["hook_embed"] = x
    hk["hook_pos_embed"] = W["wpe.weight"][:S][None].expand(ids.shape[0], S, -1)
    x = x + hk["hook_pos_embed"]
    for L in range(cfg["n_layer"]):
        p = f"h.{L}."
        hk[f"blocks.{L}.hook_resid_pre"] = x
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        hk[f"blocks.{L}.ln1.hook_normalized"] = h
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]  # Conv1D: [in, out]
        D = x.shape[-1]
        q, k, v = heads(qkv[..., :D], H), heads(qkv[..., D : 2 * D], H), heads(qkv[..., 2 * D :], H)
        pattern, z = attend(q, k, v, 1.0 / math.sqrt(q.shape[-1]))
        attention_hooks(hk, L, q, k, v, pattern, z)
        a = z.reshape(z.shape[0], S, -1) @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        hk[f"blocks.{L}.hook_attn_out"] = a
        x = x + a
        hk[f"blocks.{L}.hook_resid_mid"] = x
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        hk[f"blocks.{L}.ln2.hook_normalized"] = h
        pre = h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"]
        post = gelu_tanh(pre)
        m = post @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
        hk[f"blocks.{L}.mlp.hook_pre"], hk[f"blocks.{L}.mlp.hook_post"] = pre, post
        hk[f"blocks.{L}.hook_mlp_out"] = m
        x = x + m
        hk[f"blocks.{L}.hook_resid_post"] = x
    h = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    hk["ln_final.hook_normalized"] = h
    hk["logits"] = h @ W["wte.weight"].T
    return hk


def forward_neox(cfg, W, ids, attend, rope):
    hk = {}
    H, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
    D = cfg["hidden_size"]
    d = D // H
    freqs = inv_freqs(int(d * cfg["rotary_pct"]), cfg["rotary_emb_base"])
    x = W["gpt_neox.embed_in.weight"][ids]
    hk["hook_embed"] = x
    for L in range(cfg["num_hidden_layers"]):
        p = f"gpt_neox.layers.{L}."
        hk[f"blocks.{L}.hook_resid_pre"] = x
        h = layer_norm(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps)
        hk[f"blocks.{L}.ln1.hook_normalized"] = h
        qkv = h @ W[p + "attention.query_key_value.weight"].T + W[p + "attention.query_key_value.bias"]
        qkv = heads(qkv, H)  # per head: [q | k | v], each d wide
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        pattern, z = attend(rope(q, freqs), rope(k, freqs), v, 1.0 / math.sqrt(d))
        attention_hooks(hk, L, q, k, v, pattern, z)
        a = z.reshape(z.shape[0], z.shape[1], -1) @ W[p + "attention.dense.weight"].T + W[p + "attention.dense.bias"]
        hk[f"blocks.{L}.hook_attn_out"] = a
        h2 = layer_norm(x, W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"], eps)
        hk[f"blocks.{L}.ln2.hook_normalized"] = h2
        pre = h2 @ W[p + "mlp.dense_h_to_4h.weight"].T + W[p + "mlp.dense_h_to_4h.bias"]
        post = gelu_erf(pre)
        m = post @ W[p + "mlp.dense_4h_to_h.weight"].T + W[p + "mlp.dense_4h_to_h.bias"]
        hk[f"blocks.{L}.mlp.hook_pre"], hk[f"blocks.{L}.mlp.hook_post"] = pre, post
        hk[f"blocks.{L}.hook_mlp_out"] = m
        x = x + a + m
        hk[f"blocks.{L}.hook_resid_post"] = x
    h = layer_norm(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"], eps)
    hk["ln_final.hook_normalized"] = h
    hk["logits"] = h @ W["embed_out.weight"].T
    return hk


def sliding_layers(cfg):
    """Which layers use the sliding window (Gemma2: even layers; else layer_types / the pattern)."""
    n = cfg["num_hidden_layers"]
    if "layer_types" in cfg:
        return [t == "sliding_attention" for t in cfg["layer_types"]]
    if cfg["model_type"] == "gemma2":
        return [(i + 1) % 2 != 0 for i in range(n)]
    if cfg["model_type"] == "gemma3_text":
        return [(i + 1) % cfg["sliding_window_pattern"] != 0 for i in range(n)]
    return [False] * n


def forward_decoder(cfg, W, ids, attend, rope):
    """Llama, Qwen2, Qwen3, Gemma2, Gemma3: pre-norm decoder, gated MLP, rotary on whole heads."""
    mt = cfg["model_type"]
    gemma = mt in ("gemma2", "gemma3_text")
    hk = {}
    H, Hkv, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rms_norm_eps"]
    D = cfg["hidden_size"]
    d = cfg.get("head_dim") or D // H
    scale = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else d**-0.5
    softcap = cfg.get("attn_logit_softcapping")
    act = gelu_tanh if gemma else silu
    slide = sliding_layers(cfg)
    global_freqs = inv_freqs(d, cfg["rope_theta"], cfg.get("rope_scaling"))
    local_freqs = inv_freqs(d, cfg["rope_local_base_freq"]) if mt == "gemma3_text" else global_freqs

    def norm(x, name):
        return rms_norm(x, W[name], eps, gemma)

    def lin(x, name, bias=False):
        y = x @ W[name + ".weight"].T
        return y + W[name + ".bias"] if bias else y

    x = W["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * torch.tensor(D**0.5, dtype=torch.float32).double()  # exact in the stored dtype here
    hk["hook_embed"] = x
    qkv_bias = mt == "qwen2" or cfg.get("attention_bias", False)
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        hk[f"blocks.{L}.hook_resid_pre"] = x
        h = norm(x, p + "input_layernorm.weight")
        hk[f"blocks.{L}.ln1.hook_normalized"] = h
        q = heads(lin(h, p + "self_attn.q_proj", qkv_bias), H)
        k = heads(lin(h, p + "self_attn.k_proj", qkv_bias), Hkv)
        v = heads(lin(h, p + "self_attn.v_proj", qkv_bias), Hkv)
        if mt in ("qwen3", "gemma3_text"):
            q = norm(q, p + "self_attn.q_norm.weight")
            k = norm(k, p + "self_attn.k_norm.weight")
        freqs = local_freqs if slide[L] else global_freqs
        window = cfg["sliding_window"] if slide[L] else None
        pattern, z = attend(rope(q, freqs), rope(k, freqs), v, scale, softcap, window)
        attention_hooks(hk, L, q, k, v, pattern, z)
        a = lin(z.reshape(z.shape[0], z.shape[1], -1), p + "self_attn.o_proj")
        if gemma:
            a = norm(a, p + "post_attention_layernorm.weight")
        hk[f"blocks.{L}.hook_attn_out"] = a
        x = x + a
        hk[f"blocks.{L}.hook_resid_mid"] = x
        h = norm(x, p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"))
        hk[f"blocks.{L}.ln2.hook_normalized"] = h
        pre = lin(h, p + "mlp.gate_proj")
        post = act(pre) * lin(h, p + "mlp.up_proj")
        m = lin(post, p + "mlp.down_proj")
        if gemma:
            m = norm(m, p + "post_feedforward_layernorm.weight")
        hk[f"blocks.{L}.mlp.hook_pre"], hk[f"blocks.{L}.mlp.hook_post"] = pre, post
        hk[f"blocks.{L}.hook_mlp_out"] = m
        x = x + m
        hk[f"blocks.{L}.hook_resid_post"] = x
    h = norm(x, "model.norm.weight")
    hk["ln_final.hook_normalized"] = h
    unembed = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    logits = h @ unembed.T
    cap = cfg.get("final_logit_softcapping")
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    hk["logits"] = logits
    return hk


# ---------------------------------------------------------------- cases


def gpt2_case():
    g = Gen(101, "float32")
    L, D, F = 2, HIDDEN, 4 * HIDDEN
    cfg = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": VOCAB - 1, "embd_pdrop": 0.1, "eos_token_id": VOCAB - 1, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 32, "n_embd": D, "n_head": 4,
        "n_inner": None, "n_layer": L, "n_positions": 32, "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True, "torch_dtype": "float32",
        "use_cache": True, "vocab_size": VOCAB,
    }
    W = {"wte.weight": g.randn((VOCAB, D), 0.5), "wpe.weight": g.randn((32, D), 0.3)}
    for i in range(L):
        p = f"h.{i}."
        W[p + "ln_1.weight"], W[p + "ln_1.bias"] = g.norm(D), g.bias(D)
        W[p + "attn.c_attn.weight"] = g.linear(3 * D, D, 2.0).T.contiguous()  # Conv1D [in, out]
        W[p + "attn.c_attn.bias"] = g.bias(3 * D)
        W[p + "attn.c_proj.weight"] = g.linear(D, D).T.contiguous()
        W[p + "attn.c_proj.bias"] = g.bias(D)
        W[p + "ln_2.weight"], W[p + "ln_2.bias"] = g.norm(D), g.bias(D)
        W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"] = g.linear(F, D).T.contiguous(), g.bias(F)
        W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"] = g.linear(D, F).T.contiguous(), g.bias(D)
    W["ln_f.weight"], W["ln_f.bias"] = g.norm(D), g.bias(D)
    return cfg, W, forward_gpt2


def neox_case():
    g = Gen(102, "float32")
    L, D, H = 2, HIDDEN, 4
    d = D // H
    cfg = {
        "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu",
        "hidden_size": D, "initializer_range": 0.02, "intermediate_size": 4 * D, "layer_norm_eps": 1e-05,
        "max_position_embeddings": 64, "model_type": "gpt_neox", "num_attention_heads": H,
        "num_hidden_layers": L, "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False,
        "torch_dtype": "float32", "use_cache": True, "use_parallel_residual": True, "vocab_size": VOCAB,
    }
    W = {"gpt_neox.embed_in.weight": g.randn((VOCAB, D), 1.0)}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"] = g.norm(D), g.bias(D)
        W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"] = g.norm(D), g.bias(D)
        # fused [3*D, D]: rows of head h are q (d rows), then k, then v
        q, k, v = g.linear(D, D, 2.0), g.linear(D, D, 2.0), g.linear(D, D)
        fused = torch.stack([q.reshape(H, d, D), k.reshape(H, d, D), v.reshape(H, d, D)], 1)
        W[p + "attention.query_key_value.weight"] = fused.reshape(3 * D, D)
        W[p + "attention.query_key_value.bias"] = g.bias(3 * D)
        W[p + "attention.dense.weight"], W[p + "attention.dense.bias"] = g.linear(D, D), g.bias(D)
        W[p + "mlp.dense_h_to_4h.weight"], W[p + "mlp.dense_h_to_4h.bias"] = g.linear(4 * D, D), g.bias(4 * D)
        W[p + "mlp.dense_4h_to_h.weight"], W[p + "mlp.dense_4h_to_h.bias"] = g.linear(D, 4 * D), g.bias(D)
    W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"] = g.norm(D), g.bias(D)
    W["embed_out.weight"] = g.linear(VOCAB, D, 4.0)
    return cfg, W, forward_neox


def decoder_weights(g, cfg):
    """Llama-layout weights for a config (q/k/v biases for Qwen2, q/k norms for Qwen3/Gemma3)."""
    mt = cfg["model_type"]
    gemma = mt in ("gemma2", "gemma3_text")
    D, F = cfg["hidden_size"], cfg["intermediate_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or D // H
    W = {"model.embed_tokens.weight": g.randn((VOCAB, D), 1.0 if not gemma else 0.7)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = g.norm(D, gemma)
        W[p + "self_attn.q_proj.weight"] = g.linear(H * d, D, 2.0)
        W[p + "self_attn.k_proj.weight"] = g.linear(Hkv * d, D, 2.0)
        W[p + "self_attn.v_proj.weight"] = g.linear(Hkv * d, D)
        if mt == "qwen2":
            W[p + "self_attn.q_proj.bias"] = g.bias(H * d)
            W[p + "self_attn.k_proj.bias"] = g.bias(Hkv * d)
            W[p + "self_attn.v_proj.bias"] = g.bias(Hkv * d)
        if mt in ("qwen3", "gemma3_text"):
            W[p + "self_attn.q_norm.weight"] = g.norm(d, gemma)
            W[p + "self_attn.k_norm.weight"] = g.norm(d, gemma)
        W[p + "self_attn.o_proj.weight"] = g.linear(D, H * d)
        W[p + "post_attention_layernorm.weight"] = g.norm(D, gemma)
        if gemma:
            W[p + "pre_feedforward_layernorm.weight"] = g.norm(D, gemma)
            W[p + "post_feedforward_layernorm.weight"] = g.norm(D, gemma)
        W[p + "mlp.gate_proj.weight"] = g.linear(F, D, 1.5)
        W[p + "mlp.up_proj.weight"] = g.linear(F, D)
        W[p + "mlp.down_proj.weight"] = g.linear(D, F)
    W["model.norm.weight"] = g.norm(D, gemma)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = g.linear(VOCAB, D, 4.0)
    return W


def llama_like(model_type, arch, **extra):
    cfg = {
        "architectures": [arch], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1,
        "eos_token_id": 2, "hidden_act": "silu", "hidden_size": HIDDEN, "initializer_range": 0.02,
        "intermediate_size": 128, "max_position_embeddings": 64, "model_type": model_type,
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
        "use_cache": True, "vocab_size": VOCAB,
    }
    cfg.update(extra)
    return dict(sorted(cfg.items()))


def llama_case():
    cfg = llama_like("llama", "LlamaForCausalLM", pretraining_tp=1, torch_dtype="bfloat16")
    # flush tiny values so every bf16 weight is also exact in float16 (the GGUF's F16 tensors)
    return cfg, decoder_weights(Gen(103, "bfloat16", flush=2.0**-14), cfg), forward_decoder


def llama3_case():
    scaling = {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
               "original_max_position_embeddings": 64, "rope_type": "llama3"}
    cfg = llama_like("llama", "LlamaForCausalLM", head_dim=16, max_position_embeddings=512, mlp_bias=False,
                     pretraining_tp=1, rope_scaling=scaling, rope_theta=500000.0, tie_word_embeddings=True)
    return cfg, decoder_weights(Gen(104, "float32"), cfg), forward_decoder


def qwen2_case():
    cfg = llama_like("qwen2", "Qwen2ForCausalLM", bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 2,
                     max_window_layers=2, rms_norm_eps=1e-06, rope_theta=1000000.0, sliding_window=64,
                     tie_word_embeddings=True, torch_dtype="float16", use_sliding_window=False)
    del cfg["attention_bias"]
    return cfg, decoder_weights(Gen(105, "float16"), cfg), forward_decoder


def qwen3_case():
    cfg = llama_like("qwen3", "Qwen3ForCausalLM", bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1, head_dim=24,
                     max_window_layers=2, rms_norm_eps=1e-06, rope_theta=1000000.0, sliding_window=None,
                     tie_word_embeddings=True, use_sliding_window=False)
    return cfg, decoder_weights(Gen(106, "float32"), cfg), forward_decoder


def gemma2_case():
    cfg = llama_like("gemma2", "Gemma2ForCausalLM", attn_logit_softcapping=50.0, bos_token_id=2,
                     cache_implementation="hybrid", eos_token_id=1, final_logit_softcapping=30.0, head_dim=32,
                     hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", pad_token_id=0,
                     query_pre_attn_scalar=24, rms_norm_eps=1e-06, sliding_window=4, tie_word_embeddings=True)
    return cfg, decoder_weights(Gen(107, "float32"), cfg), forward_decoder


def gemma3_case():
    n = 4
    cfg = llama_like("gemma3_text", "Gemma3ForCausalLM", attn_logit_softcapping=None, bos_token_id=2,
                     cache_implementation="hybrid", eos_token_id=[1, 106], final_logit_softcapping=None,
                     head_dim=32, hidden_activation="gelu_pytorch_tanh", num_hidden_layers=n,
                     num_key_value_heads=1, pad_token_id=0, query_pre_attn_scalar=48, rms_norm_eps=1e-06,
                     rope_local_base_freq=10000.0, rope_theta=1000000.0, sliding_window=4,
                     sliding_window_pattern=3, tie_word_embeddings=True)
    del cfg["hidden_act"]
    cfg["layer_types"] = ["full_attention" if (i + 1) % 3 == 0 else "sliding_attention" for i in range(n)]
    cfg = dict(sorted(cfg.items()))
    return cfg, decoder_weights(Gen(108, "float32"), cfg), forward_decoder


CASES = {  # name -> (builder, storage dtype, sharded)
    "gpt2": (gpt2_case, "float32", False),
    "llama": (llama_case, "bfloat16", True),
    "llama3": (llama3_case, "float32", False),
    "qwen2": (qwen2_case, "float16", False),
    "qwen3": (qwen3_case, "float32", False),
    "gemma2": (gemma2_case, "float32", False),
    "gemma3": (gemma3_case, "float32", False),
    "gpt_neox": (neox_case, "float32", False),
}


# ---------------------------------------------------------------- safetensors


def tensor_bytes(t, dtype):
    """t: float64 (already representable in dtype) or int64 -> (safetensors dtype, raw little-endian bytes)."""
    if dtype == "int64":
        return "I64", t.numpy().astype("<i8").tobytes()
    tdt, name = STORE[dtype]
    if dtype == "bfloat16":
        raw = t.to(tdt).view(torch.int16).numpy().astype("<i2").tobytes()
    else:
        raw = t.to(tdt).numpy().astype("<f4" if dtype == "float32" else "<f2").tobytes()
    return name, raw


def write_safetensors(path, tensors):
    """tensors: name -> (tensor, dtype). Header JSON padded with spaces to a multiple of 8."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (t, dtype) in tensors.items():
        st, raw = tensor_bytes(t, dtype)
        header[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return off


def read_safetensors(path):
    """Independent reader used by the self-check: name -> float64/int64 tensor."""
    buf = open(path, "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = buf[8 + n + a : 8 + n + b]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        elif info["dtype"] == "I64":
            arr = np.frombuffer(raw, "<i8")
        else:
            arr = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[info["dtype"]]).astype(np.float64)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def save_checkpoint(folder, W, dtype, sharded):
    if not sharded:
        write_safetensors(os.path.join(folder, "model.safetensors"), {k: (v, dtype) for k, v in W.items()})
        return ["model.safetensors"]
    names = list(W)
    first = [n for n in names if n.startswith("model.embed_tokens") or n.startswith("model.layers.0.")]
    parts = [first, [n for n in names if n not in first]]
    files = [f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors" for i in range(len(parts))]
    weight_map, total = {}, 0
    for part, fname in zip(parts, files):
        total += write_safetensors(os.path.join(folder, fname), {k: (W[k], dtype) for k in part})
        weight_map.update({k: fname for k in part})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return files + ["model.safetensors.index.json"]


def load_checkpoint(folder, files):
    W = {}
    for f in files:
        if f.endswith(".safetensors"):
            W.update(read_safetensors(os.path.join(folder, f)))
    return W


# ---------------------------------------------------------------- GGUF

GGUF_T = {"u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9}
GGML_F32, GGML_F16 = 0, 1


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(kind, v):
    if kind == "u32":
        return struct.pack("<I", v)
    if kind == "i32":
        return struct.pack("<i", v)
    if kind == "f32":
        return struct.pack("<f", v)
    if kind == "bool":
        return struct.pack("<?", v)
    if kind == "str":
        return gguf_str(v)
    item, values = v  # array: (item kind, list)
    return struct.pack("<IQ", GGUF_T[item], len(values)) + b"".join(gguf_value(item, x) for x in values)


SPM_CHARS = ["▁", "T", "h", "e", "c", "a", "p", "i", "t", "l", "o", "f", "F", "r", "n", "s", "P"]
# merge pieces, highest priority first; each is the concatenation of two earlier pieces
SPM_MERGES = ["he", "▁T", "▁The", "ap", "▁c", "▁cap", "it", "al", "ital", "▁capital", "▁o", "▁of", "ce", "▁F",
              "ra", "▁Fra", "nce", "▁France", "is", "▁is", "▁P", "ar", "▁Par", "▁Paris"]
SPM_TEXT = "The capital of France is Paris"


def llama_vocab(n):
    """SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens, 17 characters and 24 merged
    pieces (each reachable by merging two earlier pieces, so a BPE tokenizer can form them)."""
    pieces = SPM_CHARS + SPM_MERGES
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + pieces
    assert len(tokens) == n, len(tokens)
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces)  # unknown, control, byte, normal
    scores = [0.0] * 259 + [-100.0 - i for i in range(len(SPM_CHARS))] + [-float(i) for i in range(len(SPM_MERGES))]
    return tokens, scores, types


def spm_encode(text, tokens, scores):
    """Greedy SentencePiece BPE (as llama.cpp's SPM tokenizer): leading '▁', spaces to '▁', then merge the
    adjacent pair whose joined piece has the highest score (leftmost on ties) until none is in the vocab."""
    ids = {t: i for i, t in enumerate(tokens)}
    sym = list("▁" + text.replace(" ", "▁"))
    while True:
        best = None
        for i in range(len(sym) - 1):
            j = ids.get(sym[i] + sym[i + 1])
            if j is not None and (best is None or scores[j] > best[0]):
                best = (scores[j], i)
        if best is None:
            return [ids[s] for s in sym]
        i = best[1]
        sym[i : i + 2] = [sym[i] + sym[i + 1]]


def permute_qk(w, n_head):
    """HF rotate-half rows -> llama.cpp adjacent pairs, as convert_hf_to_gguf.py's LlamaModel does:
    rows of each head viewed [2, d/2] are transposed to [d/2, 2]."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, cfg, W):
    H, Hkv, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    tokens, scores, types = llama_vocab(cfg["vocab_size"])
    kv = [
        ("general.architecture", "str", "llama"),
        ("general.name", "str", "tiny-llama-reference"),
        ("general.file_type", "u32", 1),
        ("llama.vocab_size", "u32", cfg["vocab_size"]),
        ("llama.context_length", "u32", cfg["max_position_embeddings"]),
        ("llama.embedding_length", "u32", D),
        ("llama.block_count", "u32", cfg["num_hidden_layers"]),
        ("llama.feed_forward_length", "u32", cfg["intermediate_size"]),
        ("llama.rope.dimension_count", "u32", D // H),
        ("llama.attention.head_count", "u32", H),
        ("llama.attention.head_count_kv", "u32", Hkv),
        ("llama.attention.layer_norm_rms_epsilon", "f32", cfg["rms_norm_eps"]),
        ("llama.rope.freq_base", "f32", cfg["rope_theta"]),
        ("general.alignment", "u32", 32),
        ("tokenizer.ggml.model", "str", "llama"),
        ("tokenizer.ggml.tokens", "arr", ("str", tokens)),
        ("tokenizer.ggml.scores", "arr", ("f32", scores)),
        ("tokenizer.ggml.token_type", "arr", ("i32", types)),
        ("tokenizer.ggml.bos_token_id", "u32", cfg["bos_token_id"]),
        ("tokenizer.ggml.eos_token_id", "u32", cfg["eos_token_id"]),
        ("tokenizer.ggml.unknown_token_id", "u32", 0),
        ("tokenizer.ggml.add_bos_token", "bool", True),
        ("tokenizer.ggml.add_eos_token", "bool", False),
    ]
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down"}
    f16 = {"token_embd.weight", "blk.0.ffn_down.weight"}
    tensors = []
    for hf, t in W.items():
        if hf in names:
            name = names[hf]
        else:
            _, _, L, rest = hf.split(".", 3)
            name = f"blk.{L}.{per_layer[rest.rsplit('.', 1)[0]]}.weight"
        a = t.numpy()
        if name.endswith("attn_q.weight"):
            a = permute_qk(a, H)
        elif name.endswith("attn_k.weight"):
            a = permute_qk(a, Hkv)
        if name in f16:
            raw = a.astype("<f2")
            assert np.array_equal(raw.astype(np.float64), a), f"{name} not exact in f16"
            tensors.append((name, a.shape, GGML_F16, raw.tobytes()))
        else:
            tensors.append((name, a.shape, GGML_F32, a.astype("<f4").tobytes()))
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, kind, v in kv:
        out += gguf_str(key) + struct.pack("<I", GGUF_T[kind]) + gguf_value(kind, v)
    off, data = 0, b""
    for name, shape, ty, raw in tensors:
        ne = list(reversed(shape))  # ggml's ne[0] is the fastest-varying (innermost) dimension
        out += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", ty, off)
        pad = -len(raw) % 32
        data += raw + b"\0" * pad
        off += len(raw) + pad
    out += b"\0" * (-len(out) % 32)
    with open(path, "wb") as f:
        f.write(out + data)


def read_gguf(path):
    """Minimal independent GGUF v3 reader for the self-check: (metadata dict, name -> float64 array)."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos : pos + n].decode()
        pos += n
        return s

    fmts = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            it, n = take("I"), take("Q")
            return [value(it) for _ in range(n)]
        return take(fmts[t])

    assert buf[:4] == b"GGUF"
    pos = 4
    version, n_t, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("I"))
    infos = []
    for _ in range(n_t):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        infos.append((name, ne, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    start = pos + (-pos % align)
    out = {}
    for name, ne, ty, off in infos:
        assert off % align == 0
        count = int(np.prod(ne))
        dt = {GGML_F32: "<f4", GGML_F16: "<f2"}[ty]
        arr = np.frombuffer(buf, dt, count, start + off).astype(np.float64)
        out[name] = arr.reshape(list(reversed(ne)))
    assert start + max(off + int(np.prod(ne)) * (4 if ty == 0 else 2) for _, ne, ty, off in infos) <= len(buf)
    return meta, out


def gguf_forward(meta, T, ids):
    """Llama forward from GGUF tensors, with llama.cpp's adjacent-pair rotary on the permuted Q/K."""
    n_layer, H = meta["llama.block_count"], meta["llama.attention.head_count"]
    Hkv, eps = meta["llama.attention.head_count_kv"], meta["llama.attention.layer_norm_rms_epsilon"]
    d = meta["llama.rope.dimension_count"]
    freqs = inv_freqs(d, float(meta["llama.rope.freq_base"]))
    t = {k: torch.from_numpy(v) for k, v in T.items()}
    x = t["token_embd.weight"][ids]
    hooks = {}
    for L in range(n_layer):
        p = f"blk.{L}."
        h = rms_norm(x, t[p + "attn_norm.weight"], eps)
        q = heads(h @ t[p + "attn_q.weight"].T, H)
        k = heads(h @ t[p + "attn_k.weight"].T, Hkv)
        v = heads(h @ t[p + "attn_v.weight"].T, Hkv)
        pattern, z = attend_batched(rope_loop(q, freqs, True), rope_loop(k, freqs, True), v, d**-0.5)
        hooks[f"blocks.{L}.attn.hook_pattern"] = pattern
        x = x + z.reshape(z.shape[0], z.shape[1], -1) @ t[p + "attn_output.weight"].T
        h = rms_norm(x, t[p + "ffn_norm.weight"], eps)
        m = (silu(h @ t[p + "ffn_gate.weight"].T) * (h @ t[p + "ffn_up.weight"].T)) @ t[p + "ffn_down.weight"].T
        x = x + m
        hooks[f"blocks.{L}.hook_resid_post"] = x
    hooks["logits"] = rms_norm(x, t["output_norm.weight"], eps) @ t["output.weight"].T
    return hooks


# ---------------------------------------------------------------- checks and output


def max_rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_case(name, cfg, W, fwd, hooks, ids):
    """Every hook again with loop attention and rotary; identities of the residual stream."""
    again = fwd(cfg, W, ids, attend_loop, rope_loop)
    assert list(again) == list(hooks)
    worst = max(max_rel(again[k], hooks[k]) for k in hooks)
    assert worst < 1e-10, (name, worst)
    n_layers = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    for L in range(n_layers):
        pat = hooks[f"blocks.{L}.attn.hook_pattern"]
        assert torch.allclose(pat.sum(-1), torch.ones(()).double())
        assert float(pat.triu(1).abs().max()) == 0.0
        pre, post = hooks[f"blocks.{L}.hook_resid_pre"], hooks[f"blocks.{L}.hook_resid_post"]
        a, m = hooks[f"blocks.{L}.hook_attn_out"], hooks[f"blocks.{L}.hook_mlp_out"]
        assert max_rel(pre + a + m, post) < 1e-12
    patterns = torch.stack([hooks[f"blocks.{L}.attn.hook_pattern"] for L in range(n_layers)])
    top = float(patterns[..., 3:, :].amax(-1).mean())
    resid = max(float(hooks[f"blocks.{L}.hook_resid_post"].abs().max()) for L in range(n_layers))
    print(f"{name}: loop check {worst:.1e}, mean top attention weight (q >= 3) {top:.2f}, "
          f"max |resid| {resid:.1f}, logits std {float(hooks['logits'].std()):.2f}")


def check_rope():
    """Rotary identity: with the same q and k at every position, q_i . k_j depends on i - j only, and the
    unrotated dims (partial rotary) are untouched."""
    g = torch.Generator().manual_seed(3)
    for d, freqs in [(16, inv_freqs(16, 1e4)), (16, inv_freqs(4, 1e4)),
                     (16, inv_freqs(16, 5e5, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                              "high_freq_factor": 4.0, "original_max_position_embeddings": 64}))]:
        q = torch.randn(1, 1, 1, d, generator=g, dtype=torch.float64).expand(1, SEQ, 1, d)
        k = torch.randn(1, 1, 1, d, generator=g, dtype=torch.float64).expand(1, SEQ, 1, d)
        rq, rk = rope_batched(q, freqs), rope_batched(k, freqs)
        dots = torch.einsum("bihd,bjhd->ij", rq, rk)
        for i in range(1, SEQ):
            for j in range(1, SEQ):
                assert abs(float(dots[i, j] - dots[i - 1, j - 1])) < 1e-12
        assert torch.equal(rq[..., 2 * len(freqs) :], q[..., 2 * len(freqs) :])


def hook_names(hooks):
    return list(hooks)


def fresh_dir(name):
    folder = os.path.join(OUT, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    return folder


def main():
    check_rope()
    os.makedirs(OUT, exist_ok=True)  # README.md there is kept; each case folder is rewritten
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(7))
    ids[0, 0] = 1  # a BOS-like start on one row
    manifest = {"description": "tiny random checkpoints and float64 reference hooks; see README.md",
                "tolerance": "max |ours - ref| / max |ref| per hook, expected <= 1e-4 in float32",
                "batch": BATCH, "seq": SEQ, "cases": []}
    for name, (build, dtype, sharded) in CASES.items():
        cfg, W, fwd = build()
        folder = fresh_dir(name)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        files = save_checkpoint(folder, W, dtype, sharded)
        stored = load_checkpoint(folder, files)  # compute from what was written, read back independently
        assert set(stored) == set(W) and all(torch.equal(stored[k], W[k]) for k in W), name
        hooks = fwd(cfg, stored, ids, attend_batched, rope_batched)
        check_case(name, cfg, stored, fwd, hooks, ids)
        ref = {"input_ids": (ids, "int64")}
        ref.update({k: (v.float().double(), "float32") for k, v in hooks.items()})
        write_safetensors(os.path.join(folder, "reference.safetensors"), ref)
        back = read_safetensors(os.path.join(folder, "reference.safetensors"))
        assert torch.equal(back["input_ids"], ids)
        manifest["cases"].append({"name": name, "model_type": cfg["model_type"],
                                  "architecture": cfg["architectures"][0], "storage": dtype,
                                  "files": ["config.json"] + files, "reference": f"{name}/reference.safetensors",
                                  "n_layers": cfg.get("num_hidden_layers", cfg.get("n_layer")),
                                  "hooks": hook_names(hooks)})
        if name == "llama":
            gdir = fresh_dir("llama-gguf")
            gpath = os.path.join(gdir, "model.gguf")
            write_gguf(gpath, cfg, stored)
            meta, T = read_gguf(gpath)
            assert len(meta["tokenizer.ggml.tokens"]) == cfg["vocab_size"]
            toks = meta["tokenizer.ggml.tokens"]
            spm = [cfg["bos_token_id"]] + spm_encode(SPM_TEXT, toks, meta["tokenizer.ggml.scores"])
            assert [toks[i] for i in spm[1:]] == ["▁The", "▁capital", "▁of", "▁France", "▁is", "▁Paris"], spm
            gh = gguf_forward(meta, T, ids)
            worst = max(max_rel(gh[k], hooks[k]) for k in gh)
            assert worst < 1e-10, worst
            print(f"llama-gguf: read back, {len(T)} tensors, {len(meta)} metadata keys; "
                  f"adjacent-pair rotary on permuted Q/K vs llama hooks {worst:.1e}")
            manifest["cases"].append({"name": "llama-gguf", "model_type": "llama", "architecture": "llama",
                                      "storage": "gguf (F32; token_embd and blk.0.ffn_down F16)",
                                      "files": ["model.gguf"], "reference": "llama/reference.safetensors",
                                      "n_layers": cfg["num_hidden_layers"], "hooks": hook_names(hooks),
                                      "tokenize": {"text": SPM_TEXT, "ids_with_bos": spm}})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
