"""The peer for `npm run bench`: one SAE training step in PyTorch, as SAELens writes it
(autograd, torch.optim.Adam), on 2 threads. Prints one JSON line: {"step_s": median seconds}.

usage: python3 bench/torch_step.py ARCH BATCH D_IN D_SAE [STEPS]
  ARCH: standard | topk-dense:K | topk-embedding_bag:K
"""
import json
import sys
import time

import torch


def standard_step(batch, d_in, d_sae):
    torch.manual_seed(0)
    w_dec = torch.randn(d_sae, d_in)
    w_dec = (w_dec / w_dec.norm(dim=1, keepdim=True) * 0.1).requires_grad_()
    w_enc = w_dec.detach().t().clone().requires_grad_()
    b_enc = torch.zeros(d_sae, requires_grad=True)
    b_dec = torch.zeros(d_in, requires_grad=True)
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=4e-4)
    x = torch.randn(batch, d_in)

    def step():
        # SAELens StandardTrainingSAE: relu encoder, L1 weighted by decoder norms, summed MSE per input
        feature_acts = torch.relu((x - b_dec) @ w_enc + b_enc)
        x_hat = feature_acts @ w_dec + b_dec
        mse = (x_hat - x).pow(2).sum(dim=-1).mean()
        sparsity = 5.0 * (feature_acts * w_dec.norm(dim=1)).norm(p=1, dim=-1).mean()
        loss = mse + sparsity
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def topk_step(batch, d_in, d_sae, k, decode):
    """A TopK step as SAELens (dense decoder) or sparsify on a CPU (embedding_bag) write it: unit-norm
    decoder with the parallel gradient component removed, no dead latents (no AuxK term)."""
    torch.manual_seed(0)
    w_dec = torch.randn(d_sae, d_in)
    w_dec = (w_dec / w_dec.norm(dim=1, keepdim=True)).requires_grad_()
    w_enc = w_dec.detach().t().clone().requires_grad_()
    b_enc = torch.zeros(d_sae, requires_grad=True)
    b_dec = torch.zeros(d_in, requires_grad=True)
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=4e-4)
    x = torch.randn(batch, d_in)

    def step():
        pre = (x - b_dec) @ w_enc + b_enc
        top = torch.topk(pre, k, dim=-1, sorted=False)
        acts = torch.relu(top.values)
        if decode == "dense":
            f = torch.zeros_like(pre).scatter(-1, top.indices, acts)
            x_hat = f @ w_dec + b_dec
        else:
            x_hat = torch.nn.functional.embedding_bag(top.indices, w_dec, per_sample_weights=acts, mode="sum") + b_dec
        e = x_hat - x
        fvu = e.pow(2).sum() / (x - x.mean(0)).pow(2).sum()
        opt.zero_grad()
        fvu.backward()
        with torch.no_grad():
            w_dec.grad -= (w_dec.grad * w_dec).sum(-1, keepdim=True) * w_dec
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=1, keepdim=True))

    return step


def main():
    arch, batch, d_in, d_sae = sys.argv[1], *map(int, sys.argv[2:5])
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    torch.set_num_threads(2)
    if arch == "standard":
        step = standard_step(batch, d_in, d_sae)
    else:  # topk-dense K / topk-embedding_bag K
        kind, k = arch.rsplit(":", 1)
        step = topk_step(batch, d_in, d_sae, int(k), kind.split("-", 1)[1])
    step()  # warm-up
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"step_s": times[len(times) // 2], "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
