"""The peer for `npm run bench`: one SAE training step in PyTorch, as SAELens writes it
(autograd, torch.optim.Adam), on 2 threads. Prints one JSON line: {"step_s": median seconds}.

usage: python3 bench/torch_step.py standard BATCH D_IN D_SAE [STEPS]
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


def main():
    arch, batch, d_in, d_sae = sys.argv[1], *map(int, sys.argv[2:5])
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    torch.set_num_threads(2)
    step = {"standard": standard_step}[arch](batch, d_in, d_sae)
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
