"""Oracle for the SAE format loaders: tiny SAEs written as each library saves them, with inputs and
the latents and reconstructions each home library's formulas give (float64 PyTorch).

Run with /usr/bin/python3 (torch, numpy). Writes test/fixtures/sae-formats/<case>/:
  sae/ or params.npz     the SAE in the library's layout (weights rounded to float32, or the dtype named)
  reference.safetensors  x [rows, d_in], f [rows, d_sae], x_hat [rows, d_in] (F64)
  case.json              {"format": ..., "load": path to load, "notes": ...}
and test/fixtures/sae-formats/bad/<case>/ with inputs the loaders must refuse.

Formulas (read from each library's source; no code copied):
  SAELens (saes/*.py, v3 to v6): sae_in = x - b_dec * apply_b_dec_to_input (normalize_activations
    expected_average_only_in and the old boolean apply nothing when a folder is loaded);
    pre = sae_in @ W_enc + b_enc; standard: relu(pre); topk: pre * ||W_dec[i]|| if
    rescale_acts_by_decoder_norm, then relu of the k largest; jumprelu: relu(pre) * (pre > threshold);
    gated: (sae_in @ W_enc + b_gate > 0) * relu(sae_in @ (W_enc exp(r_mag)) + b_mag).
    decode: f * finetuning_scaling_factor (v3-v5), f / ||W_dec[i]|| if rescaled; x_hat = . @ W_dec + b_dec.
  Gemma Scope (params.npz): pre = x @ W_enc + b_enc; f = relu(pre) * (pre > threshold); x_hat = f @ W_dec + b_dec.
  sparsify (sparse_coder.py, fused_encoder.py): pre = relu((x - b_dec) @ encoder.weight^T + encoder.bias);
    f = the k largest of pre; x_hat = f @ W_dec + b_dec (+ x @ W_skip^T with skip_connection).
  Llama Scope via SAELens (llama_scope loader + fold_activation_norm_scaling_factor):
    c = sqrt(d_model) / dataset_average_activation_norm.in; W_enc = c encoder.weight^T,
    W_dec = decoder.weight^T / c, b_dec = decoder.bias / c, threshold = jump_relu_threshold * c; then JumpReLU.
"""
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "sae-formats")
D_IN, D_SAE, ROWS = 6, 16, 8
ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, dtype=torch.float32):
    """The safetensors layout: u64 header length, JSON header, then each tensor's bytes."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(dtype).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dtype in (torch.float16, torch.bfloat16) else t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def rounded(t, dtype=torch.float32):
    """t as the file will hold it, back in float64."""
    return t.to(dtype).to(torch.float64)


def rand(g, *shape, scale=1.0):
    return rounded(torch.randn(*shape, generator=g) * scale)


def topk_dense(pre, k):
    vals, idx = torch.topk(pre, k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals.relu())


def jumprelu(pre, theta):
    return pre.relu() * (pre > theta)


def save_case(name, fmt, load, x, f, x_hat, notes=""):
    d = os.path.join(OUT, name)
    write_safetensors(os.path.join(d, "reference.safetensors"), {"x": x, "f": f, "x_hat": x_hat}, torch.float64)
    with open(os.path.join(d, "case.json"), "w") as fh:
        json.dump({"format": fmt, "load": load, "notes": notes}, fh, indent=1)


def saelens_cfg(version, **fields):
    """A cfg.json as SAELens of that major version saves it."""
    if version == 6:
        meta = {"sae_lens_version": "6.18.0", "sae_lens_training_version": "6.18.0", "model_name": "gpt2",
                "hook_name": "blocks.3.hook_resid_pre", "hook_head_index": None, "neuronpedia_id": "gpt2-small/3-res",
                "model_from_pretrained_kwargs": {"center_writing_weights": False}, "prepend_bos": True}
        return {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
                "normalize_activations": "none", "reshape_activations": "none", "metadata": meta, **fields}
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "activation_fn_str": "relu", "apply_b_dec_to_input": True,
           "finetuning_scaling_factor": False, "context_size": 128, "model_name": "gpt2", "hook_layer": 3,
           "hook_head_index": None, "prepend_bos": True, "dataset_path": "NeelNanda/pile-10k", "dataset_trust_remote_code": True,
           "normalize_activations": "none", "dtype": "float32", "device": "cpu", "sae_lens_training_version": f"{version}.0.0",
           "activation_fn_kwargs": {}, "neuronpedia_id": None, "model_from_pretrained_kwargs": {}}
    cfg["hook_point" if version == 3 else "hook_name"] = "blocks.3.hook_resid_pre"
    if version == 3:
        cfg["hook_point_layer"] = cfg.pop("hook_layer")
        cfg["normalize_activations"] = False
        for k in ("activation_fn_kwargs", "model_from_pretrained_kwargs", "dataset_trust_remote_code"):
            del cfg[k]
    cfg.update(fields)
    return cfg


def saelens_forward(x, p, kind, apply_b_dec=True, k=None, rescale=False, scale=None):
    sae_in = x - p["b_dec"] * apply_b_dec
    if kind == "gated":
        gate = (sae_in @ p["W_enc"] + p["b_gate"]) > 0
        f = gate * (sae_in @ (p["W_enc"] * p["r_mag"].exp()) + p["b_mag"]).relu()
    else:
        pre = sae_in @ p["W_enc"] + p["b_enc"]
        norms = p["W_dec"].norm(dim=-1)
        if kind == "standard":
            f = pre.relu()
        elif kind == "topk":
            f = topk_dense(pre * norms if rescale else pre, k)
        else:
            f = jumprelu(pre, p["threshold"])
    fd = f * scale if scale is not None else f
    if rescale:
        fd = fd / p["W_dec"].norm(dim=-1)
    return f, fd @ p["W_dec"] + p["b_dec"]


def base_params(g, kind, dec_scale=1.0):
    p = {"W_enc": rand(g, D_IN, D_SAE), "W_dec": rand(g, D_SAE, D_IN, scale=dec_scale), "b_dec": rand(g, D_IN, scale=0.3)}
    if kind == "gated":
        p.update(b_gate=rand(g, D_SAE, scale=0.5), b_mag=rand(g, D_SAE, scale=0.5), r_mag=rand(g, D_SAE, scale=0.3))
    else:
        p["b_enc"] = rand(g, D_SAE, scale=0.5)
    if kind == "jumprelu":
        p["threshold"] = rand(g, D_SAE, scale=0.8)  # some negative: SAELens's ReLU comes first
    return p


def saelens_case(name, version, kind, cfg_fields, fwd, extra_tensors=None, dtype=torch.float32, seed=0, dec_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    p = base_params(g, kind, dec_scale)
    p = {k: rounded(v, dtype) for k, v in p.items()}
    extra = {k: rounded(v, dtype) for k, v in (extra_tensors or {}).items()}
    x = rand(g, ROWS, D_IN, scale=1.5)
    d = os.path.join(OUT, name, "sae")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "cfg.json"), "w") as fh:
        json.dump(saelens_cfg(version, **cfg_fields), fh, indent=1)
    write_safetensors(os.path.join(d, "sae_weights.safetensors"), {**p, **extra}, dtype)
    f, x_hat = saelens_forward(x, {**p, **extra}, kind, **fwd)
    save_case(name, "saelens", "sae", x, f, x_hat)


def gemma_scope(name, seed, missing=None):
    g = torch.Generator().manual_seed(seed)
    p = base_params(g, "jumprelu")
    x = rand(g, ROWS, D_IN, scale=1.5)
    arrays = {k: v.to(torch.float32).numpy() for k, v in p.items() if k != missing}
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    np.savez(os.path.join(d, "params.npz"), **arrays)
    if missing is None:
        pre = x @ p["W_enc"] + p["b_enc"]
        f = jumprelu(pre, p["threshold"])
        save_case(name, "gemma-scope", "params.npz", x, f, f @ p["W_dec"] + p["b_dec"])


def sparsify_folder(d, seed, k, skip=False, multi_topk=False, dtype=torch.float32, cfg_file=True):
    g = torch.Generator().manual_seed(seed)
    enc_w, enc_b = rand(g, D_SAE, D_IN), rand(g, D_SAE, scale=0.5)
    w_dec, b_dec = rand(g, D_SAE, D_IN), rand(g, D_IN, scale=0.3)
    t = {"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": w_dec, "b_dec": b_dec}
    if skip:
        t["W_skip"] = rand(g, D_IN, D_IN, scale=0.2)
    t = {n: rounded(v, dtype) for n, v in t.items()}
    os.makedirs(d, exist_ok=True)
    if cfg_file:
        cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": D_SAE, "k": k,
               "multi_topk": multi_topk, "skip_connection": skip, "transcode": False, "d_in": D_IN}
        with open(os.path.join(d, "cfg.json"), "w") as fh:
            json.dump(cfg, fh)
    write_safetensors(os.path.join(d, "sae.safetensors"), t, dtype)
    x = rand(g, ROWS, D_IN, scale=1.5)
    pre = ((x - t["b_dec"]) @ t["encoder.weight"].T + t["encoder.bias"]).relu()
    vals, idx = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, idx, vals)
    x_hat = f @ t["W_dec"] + t["b_dec"]
    if skip:
        x_hat = x_hat + x @ t["W_skip"].T
    return x, f, x_hat


def sparsify_case(name, load, *args, **kw):
    x, f, x_hat = sparsify_folder(os.path.join(OUT, name, load), *args, **kw)
    save_case(name, "sparsify", load, x, f, x_hat)


def llama_scope(name, seed):
    g = torch.Generator().manual_seed(seed)
    t = {"encoder.weight": rand(g, D_SAE, D_IN), "encoder.bias": rand(g, D_SAE, scale=0.5),
         "decoder.weight": rand(g, D_IN, D_SAE), "decoder.bias": rand(g, D_IN, scale=0.3)}
    t = {n: rounded(v, torch.bfloat16) for n, v in t.items()}
    norm_in, theta = 3.7, 0.4
    hp = {"d_model": D_IN, "d_sae": D_SAE, "hook_point_in": "blocks.3.hook_resid_post", "hook_point_out": "blocks.3.hook_resid_post",
          "act_fn": "jumprelu", "jump_relu_threshold": theta, "norm_activation": "dataset-wise",
          "dataset_average_activation_norm": {"in": norm_in, "out": norm_in}, "top_k": 50, "sparsity_include_decoder_norm": True}
    d = os.path.join(OUT, name, "sae")
    os.makedirs(os.path.join(d, "checkpoints"), exist_ok=True)
    with open(os.path.join(d, "hyperparams.json"), "w") as fh:
        json.dump(hp, fh, indent=1)
    write_safetensors(os.path.join(d, "checkpoints", "final.safetensors"), t, torch.bfloat16)
    c = math.sqrt(D_IN) / norm_in
    x = rand(g, ROWS, D_IN, scale=1.5 * norm_in / math.sqrt(D_IN) * 3)
    pre = x @ (c * t["encoder.weight"].T) + t["encoder.bias"]
    f = jumprelu(pre, torch.full((D_SAE,), theta * c))
    x_hat = f @ (t["decoder.weight"].T / c) + t["decoder.bias"] / c
    save_case(name, "llama-scope", "sae", x, f, x_hat)


def bad_cases():
    b = os.path.join(OUT, "bad")
    os.makedirs(os.path.join(b, "unknown-layout"), exist_ok=True)
    with open(os.path.join(b, "unknown-layout", "weights.bin.txt"), "w") as fh:
        fh.write("not an SAE\n")
    g = torch.Generator().manual_seed(99)
    p = {k: v.float() for k, v in base_params(g, "standard").items()}

    def sl(name, cfg, tensors=p):
        d = os.path.join(b, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cfg.json"), "w") as fh:
            json.dump(cfg, fh)
        write_safetensors(os.path.join(d, "sae_weights.safetensors"), tensors)

    sl("shape-mismatch", saelens_cfg(6, architecture="standard", d_sae=D_SAE + 1))
    sl("topk-without-k", saelens_cfg(6, architecture="topk"))
    sl("hook-z-mismatch", saelens_cfg(6, architecture="standard", reshape_activations="hook_z"))  # hook_name is not a hook_z
    sl("constant-norm-rescale", saelens_cfg(6, architecture="standard", normalize_activations="constant_norm_rescale"))
    sl("layer-norm", saelens_cfg(6, architecture="standard", normalize_activations="layer_norm"))
    sl("unknown-dtype", saelens_cfg(6, architecture="standard", dtype="float8"))
    sl("tanh-relu", saelens_cfg(5, activation_fn_str="tanh-relu"))
    sl("unexpected-tensor", saelens_cfg(6, architecture="standard"), {**p, "threshold": torch.zeros(D_SAE)})
    sl("scale-without-flag", saelens_cfg(5), {**p, "scaling_factor": torch.full((D_SAE,), 2.0)})
    gemma_scope("bad/npz-missing-threshold", 5, missing="threshold")
    sparsify_folder(os.path.join(b, "sparsify-no-cfg"), 6, 3, cfg_file=False)
    os.makedirs(os.path.join(b, "openai"), exist_ok=True)
    torch.save({"encoder.weight": torch.zeros(4, 2).float(), "pre_bias": torch.zeros(2).float()}, os.path.join(b, "openai", "ae.pt"))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    saelens_case("saelens-v6-standard", 6, "standard", {"architecture": "standard"}, {}, seed=1)
    saelens_case("saelens-v6-standard-no-bdec", 6, "standard", {"architecture": "standard", "apply_b_dec_to_input": False}, {"apply_b_dec": False}, seed=2)
    saelens_case("saelens-v6-topk-rescale", 6, "topk", {"architecture": "topk", "k": 4, "rescale_acts_by_decoder_norm": True},
                 {"k": 4, "rescale": True}, seed=3, dec_scale=2.5)
    saelens_case("saelens-v6-topk-no-bdec", 6, "topk", {"architecture": "topk", "k": 3, "apply_b_dec_to_input": False}, {"k": 3, "apply_b_dec": False}, seed=4)
    saelens_case("saelens-v6-jumprelu-negative-threshold", 6, "jumprelu", {"architecture": "jumprelu", "apply_b_dec_to_input": False}, {"apply_b_dec": False}, seed=5)
    saelens_case("saelens-v6-jumprelu-bdec", 6, "jumprelu", {"architecture": "jumprelu"}, {}, seed=6)
    saelens_case("saelens-v6-gated-no-bdec", 6, "gated", {"architecture": "gated", "apply_b_dec_to_input": False}, {"apply_b_dec": False}, seed=7)
    g = torch.Generator().manual_seed(70)
    scale = (torch.rand(D_SAE, generator=g) + 0.5)
    saelens_case("saelens-v5-topk-finetuning-scale", 5, "topk",
                 {"activation_fn_str": "topk", "activation_fn_kwargs": {"k": 5}, "finetuning_scaling_factor": True,
                  "normalize_activations": "expected_average_only_in"},
                 {"k": 5, "scale": rounded(scale)}, extra_tensors={"scaling_factor": scale}, seed=8)
    saelens_case("saelens-v5-jumprelu-float16", 5, "jumprelu", {"architecture": "jumprelu", "dtype": "float16", "apply_b_dec_to_input": False},
                 {"apply_b_dec": False}, dtype=torch.float16, seed=9)
    saelens_case("saelens-v3-standard-scaling-factor", 3, "standard", {"normalize_activations": True, "finetuning_scaling_factor": True, "dtype": "float64"},
                 {"scale": rounded(scale, torch.float64)}, extra_tensors={"scaling_factor": scale}, dtype=torch.float64, seed=10)
    saelens_case("saelens-v3-ones-scaling-factor", 3, "standard", {}, {}, extra_tensors={"scaling_factor": torch.ones(D_SAE)}, seed=11)
    gemma_scope("gemma-scope", 12)
    sparsify_case("sparsify-topk", "layers.3", 13, 4)
    sparsify_case("sparsify-skip-multi-topk-bf16", "layers.5.mlp", 14, 3, skip=True, multi_topk=True, dtype=torch.bfloat16)
    for i, layer in enumerate(["layers.2", "layers.10"]):
        x, f, x_hat = sparsify_folder(os.path.join(OUT, "sparsify-model", "model", layer), 20 + i, 2 + i)
        save_case(f"sparsify-model/{layer}", "sparsify", os.path.join("..", "model", layer), x, f, x_hat)
    llama_scope("llama-scope", 15)
    bad_cases()
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
