"""Float64 PyTorch-autograd reference vectors for the matryoshka architecture, in the format of
the shared reference files (../shared/reference/sae/*.json): definition, conventions, hyper,
inputs, params, forward, loss, grads. Inputs and parameters are float32-representable.

usage: /usr/bin/python3 tools/gen_matryoshka_reference.py > test/fixtures/reference/matryoshka.json
"""
import json

import torch

DEFINITION = (
    "pre = (x - b_dec) @ W_enc + b_enc; post = relu(pre); keep the k*batch largest entries of post over "
    "the whole batch, f = kept, 0 elsewhere; for each prefix width m in prefixes: x_hat_m = f[:, :m] @ "
    "W_dec[:m] + b_dec, mse_m = mean_b sum_d (x_hat_m - x)^2; x_hat = x_hat_{d_sae}; mse = mse_{d_sae}; "
    "total = sum_m mse_m. Inference threshold update: theta_new = threshold_beta * theta + "
    "(1 - threshold_beta) * min(f[f > 0])."
)
CONVENTIONS = (
    "W_enc is [d_in, d_sae], W_dec is [d_sae, d_in] (SAELens orientation); x is [batch, d_in]; 'mean_b' "
    "averages over the batch rows, 'sum_d' sums over d_in. Loss keys mse_<m> for every prefix m < d_sae."
)


def f32(t):
    """Rounds to float32 and back: inputs exactly representable in float32."""
    return t.float().double()


def main():
    torch.manual_seed(2)
    batch, d_in, d_sae, k = 6, 10, 24, 4
    prefixes = [3, 8, 16, 24]
    hyper = {"k": k, "prefixes": prefixes, "threshold_beta": 0.999, "threshold": 0.05}
    x = f32(torch.randn(batch, d_in))
    params = {
        "W_enc": f32(torch.randn(d_in, d_sae) * 0.4),
        "b_enc": f32(torch.randn(d_sae) * 0.1),
        "W_dec": f32(torch.randn(d_sae, d_in) * 0.4),
        "b_dec": f32(torch.randn(d_in) * 0.1),
    }
    for p in params.values():
        p.requires_grad_(True)
    pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    post = torch.relu(pre)
    flat = post.flatten()
    kept = torch.topk(flat, k * batch).indices
    mask = torch.zeros_like(flat)
    mask[kept] = 1.0
    f = (flat * mask).view(batch, d_sae)
    losses = {}
    total = 0.0
    for m in prefixes:
        x_hat_m = f[:, :m] @ params["W_dec"][:m] + params["b_dec"]
        mse_m = (x_hat_m - x).pow(2).sum(-1).mean()
        if m < d_sae:
            losses[f"mse_{m}"] = mse_m
        total = total + mse_m
    x_hat = f @ params["W_dec"] + params["b_dec"]
    losses["mse"] = (x_hat - x).pow(2).sum(-1).mean()
    losses["total"] = total
    total.backward()
    threshold_after = hyper["threshold_beta"] * hyper["threshold"] + (1 - hyper["threshold_beta"]) * f[f > 0].min().item()
    # the selection must have no ties for the reference to be unambiguous
    top = torch.topk(flat, k * batch + 1).values
    assert top[-2] > top[-1], "a tie at the selection boundary: change the seed"
    out = {
        "architecture": "matryoshka",
        "definition": DEFINITION,
        "conventions": CONVENTIONS,
        "hyper": hyper,
        "inputs": {"x": x.tolist()},
        "params": {n: p.detach().tolist() for n, p in params.items()},
        "forward": {"pre": pre.detach().tolist(), "f": f.detach().tolist(), "x_hat": x_hat.detach().tolist(), "threshold_after": threshold_after},
        "loss": {n: v.item() for n, v in losses.items()},
        "grads": {n: p.grad.tolist() for n, p in params.items()},
        "seed": 2,
        "generator": "tools/gen_matryoshka_reference.py (PyTorch %s, float64)" % torch.__version__,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
