"""Runs sparsify's own SparseCoder (its source, not an install) on the sparsify fixtures and on
folders written by convertToSparsify, and prints how far its latents and reconstructions are from
the references of tools/gen_sae_formats.py.

  /usr/bin/python3 tools/check_sparsify_compat.py SPARSIFY_SRC [CONVERTED_DIR]

SPARSIFY_SRC: a folder holding sparsify's sparsify/ package source (e.g. `git archive HEAD sparsify`
of github.com/EleutherAI/sparsify). CONVERTED_DIR: what `SAE_FORMATS_CONVERTED=DIR npx vitest run
test/sae-formats.test.ts` writes (convertToSparsify's folders are under DIR/sparsify/).
Its third-party imports (safetensors, simple_parsing, accelerate, transformers, huggingface_hub,
natsort, einops) are replaced by small stubs written to a temporary folder, its package __init__
(which imports the trainer) by an empty one. SparseCoder.load_from_disk, encode (fused_encoder's
forward) and decode (the eager embedding_bag decoder) run unchanged; the skip connection is added as
its forward does (x @ W_skip^T). A CPU-only torch gets torch.cuda.is_bf16_supported = True (forward's CUDA autocast is not used).
"""
import os
import sys
import warnings

from compat_stubs import FIXTURES, compare, install_stubs

STUBS = {
    "accelerate/__init__.py": "",
    "accelerate/utils.py": "def send_to_device(x, d): return x\n",
    "transformers/__init__.py": "class PreTrainedModel: pass\n",
    "huggingface_hub/__init__.py": "def snapshot_download(*a, **k): raise NotImplementedError\n",
    "natsort/__init__.py": "natsorted = sorted\n",
    "einops/__init__.py": "def einsum(*a, **k): raise NotImplementedError\n",
    "simple_parsing/__init__.py": (
        "import dataclasses\n"
        "def list_field(*default): return dataclasses.field(default_factory=lambda: list(default))\n"
        "class Serializable:\n"
        "    @classmethod\n"
        "    def from_dict(cls, d, drop_extra_fields=True):\n"
        "        names = {f.name for f in dataclasses.fields(cls)}\n"
        "        return cls(**{k: v for k, v in d.items() if k in names})\n"
        "    def to_dict(self): return dataclasses.asdict(self)\n"
    ),
    "safetensors/torch.py": (
        "from safetensors import read\n"
        "def load_model(model, filename, device='cpu', strict=True):\n"
        "    missing, unexpected = model.load_state_dict(read(filename), strict=strict)\n"
        "def save_model(*a, **k): raise NotImplementedError\n"
    ),
}


def main():
    src = sys.argv[1]
    converted = sys.argv[2] if len(sys.argv) > 2 else None
    install_stubs(STUBS, "sparsify", src)
    os.environ["SPARSIFY_DISABLE_TRITON"] = "1"
    warnings.filterwarnings("ignore")
    import torch

    torch.cuda.is_bf16_supported = lambda: True  # a CPU-only torch asserts here; forward's CUDA autocast does not touch CPU tensors
    from sparsify.sparse_coder import SparseCoder

    root = FIXTURES

    def forward(sae, x):
        top_acts, top_indices, _pre = sae.encode(x)
        f = torch.zeros(x.shape[0], sae.num_latents, dtype=x.dtype).scatter(-1, top_indices, top_acts)
        x_hat = sae.decode(top_acts, top_indices)
        if sae.W_skip is not None:
            x_hat = x_hat + x @ sae.W_skip.mT
        return f, x_hat, f"k {sae.cfg.k}"

    def run(label, path, case):
        compare("sparsify", label, case, lambda: SparseCoder.load_from_disk(path).double(), forward)

    print("sparsify on the sparsify fixtures (max |sparsify - reference| / max |reference|):")
    for dirpath, _dirs, files in sorted(os.walk(root)):
        if "sae.safetensors" in files and "cfg.json" in files and os.sep + "bad" + os.sep not in dirpath:
            case = os.path.relpath(dirpath, root)
            parent = os.path.dirname(case)
            ref_case = parent if os.path.exists(os.path.join(root, parent, "reference.safetensors")) else os.path.join(os.path.dirname(parent), os.path.basename(case))
            run(case, dirpath, ref_case)
    if converted:
        print("sparsify on convertToSparsify outputs:")
        base = os.path.join(converted, "sparsify")
        for dirpath, _dirs, files in sorted(os.walk(base)):
            if "sae.safetensors" in files:
                case = os.path.relpath(dirpath, base)
                run(case, dirpath, case)


if __name__ == "__main__":
    main()
