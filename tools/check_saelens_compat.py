"""Runs SAELens's own SAE classes (its source, not an install) on the SAELens-layout fixtures and on
folders written by convertToSaeLens, and prints how far their latents and reconstructions are from
the references of tools/gen_sae_formats.py.

  /usr/bin/python3 tools/check_saelens_compat.py SAELENS_SRC [CONVERTED_DIR]

SAELENS_SRC: a folder holding SAELens's sae_lens/ package source (e.g. `git archive v6.18.0 sae_lens`
of github.com/jbloomAus/SAELens; 5.x works too: its config module is replaced by the constants the
loaders read, as it imports wandb and datasets). CONVERTED_DIR: what
`SAE_FORMATS_CONVERTED=DIR npx vitest run test/sae-formats.test.ts` writes (one folder per case).
SAELens's third-party imports that do I/O or hooks (safetensors, transformer_lens's HookPoint,
huggingface_hub, jaxtyping, einops, ...) are replaced by small stubs written to a temporary folder;
its package __init__ (which imports its training stack) by one that registers the four inference SAEs.
The SAE classes, configs and loaders (saes/*.py, loading/pretrained_sae_loaders.py) run unchanged.
"""
import os
import sys
import warnings

from compat_stubs import FIXTURES, compare, install_stubs

STUBS = {
    "jaxtyping/__init__.py": "class _T:\n    def __getitem__(self, k): return object\nFloat = Int = Bool = _T()\n",
    "einops/__init__.py": "def rearrange(*a, **k): raise NotImplementedError('hook_z reshaping is not exercised')\n",
    "transformers/__init__.py": "class PreTrainedTokenizerBase: pass\n",
    "requests/__init__.py": "",
    "packaging/__init__.py": "",
    "packaging/version.py": (
        "import re\nclass Version:\n    def __init__(self, s):\n        self.t = tuple(int(x) for x in re.findall(r'\\d+', s)[:3]); self.rc = 'rc' in s\n"
        "    def __lt__(self, o): return (self.t, not self.rc) < (o.t, not o.rc)\n"
    ),
    "huggingface_hub/__init__.py": "def hf_hub_download(*a, **k): raise NotImplementedError\nhf_hub_url = snapshot_download = hf_hub_download\n",
    "huggingface_hub/utils/__init__.py": "class EntryNotFoundError(Exception): pass\n",
    "transformer_lens/__init__.py": "",
    "transformer_lens/hook_points.py": (
        "from torch import nn\nclass HookPoint(nn.Identity): pass\nclass HookedRootModule(nn.Module):\n    def setup(self): pass\n"
    ),
    "safetensors/torch.py": "from safetensors import read as load_file\ndef save_file(*a, **k): raise NotImplementedError\nsave_model = load_model = save_file\n",
    "typing_extensions.py": (
        "import importlib.util as _u, sys as _s\n"
        "_p = next(p for p in _s.path[1:] if __import__('os').path.exists(p + '/typing_extensions.py'))\n"
        "_sp = _u.spec_from_file_location('_te', _p + '/typing_extensions.py'); _m = _u.module_from_spec(_sp); _sp.loader.exec_module(_m)\n"
        "globals().update({k: v for k, v in vars(_m).items() if not k.startswith('__')})\n"
        "def deprecated(*a, **k): return lambda f: f\n"
        "def override(f): return f\n"
    ),
}


def main():
    src = sys.argv[1]
    converted = sys.argv[2] if len(sys.argv) > 2 else None
    v5 = os.path.exists(os.path.join(src, "sae_lens", "sae.py"))
    stubs = {**STUBS, "sae_lens/__init__.py": f"import logging\n__version__ = {'5.11.0' if v5 else '6.18.0'!r}\nlogger = logging.getLogger('sae_lens')\n"}
    if v5:
        stubs["sae_lens/config.py"] = (
            "import torch\nDTYPE_MAP = {'float32': torch.float32, 'float64': torch.float64, 'float16': torch.float16, 'bfloat16': torch.bfloat16,"
            " 'torch.float32': torch.float32, 'torch.float64': torch.float64, 'torch.float16': torch.float16, 'torch.bfloat16': torch.bfloat16}\n"
            "SAE_CFG_FILENAME = 'cfg.json'\nSAE_WEIGHTS_FILENAME = 'sae_weights.safetensors'\nSPARSITY_FILENAME = 'sparsity.safetensors'\nSPARSIFY_WEIGHTS_FILENAME = 'sae.safetensors'\n"
        )
    install_stubs(stubs, "sae_lens", src)
    warnings.filterwarnings("ignore")
    if v5:
        from sae_lens.sae import SAE
    else:
        from sae_lens.registry import register_sae_class
        from sae_lens.saes import GatedSAE, GatedSAEConfig, JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
        from sae_lens.saes.sae import SAE

        for n, cls, cfg in [("standard", StandardSAE, StandardSAEConfig), ("gated", GatedSAE, GatedSAEConfig), ("topk", TopKSAE, TopKSAEConfig), ("jumprelu", JumpReLUSAE, JumpReLUSAEConfig)]:
            register_sae_class(n, cls, cfg)
    root = FIXTURES

    def forward(sae, x):
        f = sae.encode(x)
        arch = sae.cfg.architecture() if callable(sae.cfg.architecture) else sae.cfg.architecture
        return f, sae.decode(f), arch

    def run(label, path, case):
        compare("SAELens", label, case, lambda: SAE.load_from_disk(path, dtype="float64"), forward)

    print(f"SAELens {'5.11' if v5 else '6.18'} on the SAELens-layout fixtures (max |SAELens - reference| / max |reference|):")
    for c in sorted(c for c in os.listdir(root) if c.startswith("saelens")):
        run(c, os.path.join(root, c, "sae"), c)
    if converted:
        print("SAELens on convertToSaeLens outputs:")
        for dirpath, _dirs, files in sorted(os.walk(converted)):
            if "sae_weights.safetensors" in files:
                case = os.path.relpath(dirpath, converted)
                run(case, dirpath, case)


if __name__ == "__main__":
    main()
