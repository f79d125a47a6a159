"""Pieces shared by check_saelens_compat.py and check_sparsify_compat.py: stub modules written to a
temporary folder put first on sys.path (so a home library's source runs without its I/O and hook
dependencies), and the comparison they print."""
import os
import sys
import tempfile

# safetensors' reader (safe_open, and `read` for the stubs of safetensors.torch), BF16 included.
SAFETENSORS_STUB = (
    "import json, struct, numpy as np, torch as _torch\n"
    "_DT = {'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'I64': np.int64}\n"
    "def read(path):\n"
    "    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}\n"
    "    for k, v in h.items():\n"
    "        if k == '__metadata__': continue\n"
    "        s, e = v['data_offsets']; raw = b[8 + n + s:8 + n + e]\n"
    "        t = _torch.from_numpy(np.frombuffer(raw, np.int16).copy()).view(_torch.bfloat16) if v['dtype'] == 'BF16' else _torch.from_numpy(np.frombuffer(raw, _DT[v['dtype']]).copy())\n"
    "        out[k] = t.reshape(v['shape'])\n"
    "    return out\n"
    "class safe_open:\n"
    "    def __init__(self, path, framework='pt', device='cpu'): self.t = read(path)\n"
    "    def __enter__(self): return self\n"
    "    def __exit__(self, *a): pass\n"
    "    def keys(self): return list(self.t)\n"
    "    def get_tensor(self, k): return self.t[k]\n"
)


def install_stubs(stubs, package, src):
    """Writes the stub modules and `package`/__init__.py (extending its __path__ to the real source
    in src/package) to a temporary folder, and puts that folder first on sys.path."""
    tmp = tempfile.mkdtemp(prefix=f"{package}-stubs-")
    for name, text in {"safetensors/__init__.py": SAFETENSORS_STUB, **stubs}.items():
        os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(tmp, package), exist_ok=True)
    init = os.path.join(tmp, package, "__init__.py")
    prefix = open(init).read() if os.path.exists(init) else ""
    with open(init, "w") as f:
        f.write(prefix + f"__path__.append({os.path.join(os.path.abspath(src), package)!r})\n")
    sys.path.insert(0, tmp)
    return tmp


def rel(a, b):
    """max |a - b| / max |b|"""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "sae-formats")


def compare(library, label, case, load, forward):
    """Loads a model with `load()` and prints how far forward(model, x) -> (f, x_hat) is from the
    reference of `case`; a refusal to load is printed as the library gave it."""
    import torch
    from safetensors import read

    ref = read(os.path.join(FIXTURES, case, "reference.safetensors"))
    try:
        model = load()
    except Exception as e:  # noqa: BLE001 - report the library's refusal as it is
        print(f"{label:58s} {library} refuses: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
        return
    with torch.no_grad():
        f, x_hat, what = forward(model, ref["x"])
    print(f"{label:58s} {what:10s} f {rel(f, ref['f']):.1e}  x_hat {rel(x_hat, ref['x_hat']):.1e}")
