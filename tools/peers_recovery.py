"""The peers of `sae bench-recovery --peers`: reference training recipes run on the benchmark's data.

Written from reading saprmarks/dictionary_learning (trainers/batch_top_k.py, matryoshka_batch_top_k.py,
jumprelu.py, gdm.py; dictionary.py) and jbloomAus/SAELens 6.18 (saes/jumprelu_sae.py); no code copied.
Each peer trains on fresh rows of the benchmark's distribution (its true features F, read from the
files `sae bench-recovery` writes) and is scored on the benchmark's own held-out rows:
  MMCS = mean_i max_j cos(F_i, W_dec_j);  recovered = fraction of F_i with that max > threshold;
  L0 = mean active latents per held-out row;  FVU = sum |x - x_hat|^2 / sum |x - mean x|^2;
  dead = fraction of latents that never fire on the held-out rows.
Peers (their own defaults, except the learning rate, which is the benchmark's: dictionary_learning's
default learns almost nothing in a few thousand steps at this width):
  dl-batchtopk    BatchTopK (Bussmann et al.): keep the k*B largest relu(pre) of the batch; AuxK on
                  latents silent for 10M tokens (so never, in runs this short); threshold EMA 0.999
                  after the lr warm-up (1000 steps, steps / 5 in shorter runs); unit-norm decoder, gradient projected; clip 1; b_dec = geometric median.
  dl-matryoshka   the same with nested groups (our prefixes), the mean of the groups' losses.
  dl-jumprelu     f = relu(pre * H(pre - theta)); loss mse + (L0 / target - 1)^2 (its target-L0 form,
                  so no search); theta init 0.001, bandwidth 0.001; Adam betas (0, 0.999); sparsity warm-up.
  dl-gated        Gated SAE (Rajamanoharan et al.): mse + l1 * |relu(pi_gate)|_1 + aux mse of the gate
                  through the frozen decoder; unit-norm decoder (ConstrainedAdam); l1 searched to the target L0.
  saelens-jumprelu  SAELens 6.18 JumpReLUTrainingSAE: log threshold init 0.01, bandwidth 0.05,
                  l0 = Step(pre, theta), loss mse + l0_coefficient * l0 (searched to the target L0);
                  decoder rows init at norm 0.1, W_enc = W_dec^T, not constrained.
Usage: python3 tools/peers_recovery.py CONFIG.json OUT.json   (config written by sae bench-recovery)
"""
import json
import math
import sys
import time

import numpy as np
import torch as t

PEERS = ["dl-batchtopk", "dl-matryoshka", "dl-jumprelu", "dl-gated", "saelens-jumprelu"]


class Data:
    """Rows x = a @ F (+ noise), a = Bernoulli(p) * magnitude, with the benchmark's groups."""

    def __init__(self, cfg, features):
        self.cfg = cfg
        self.F = features  # [n, d]
        self.gen = t.Generator().manual_seed(1000 + cfg["seed"])

    def batch(self, rows):
        c = self.cfg
        n, p = self.F.shape[0], c["firingProbability"]
        g = self.gen
        fires = t.rand(rows, n, generator=g) < p
        if c["groupSize"] > 1 and c["groupCorrelation"] > 0:
            groups = math.ceil(n / c["groupSize"])
            shared = t.rand(rows, groups, generator=g) < p
            shared = shared.repeat_interleave(c["groupSize"], dim=1)[:, :n]
            copy = t.rand(rows, n, generator=g) < math.sqrt(c["groupCorrelation"])
            fires = t.where(copy, shared, fires)
        m = c["magnitude"]
        if m["kind"] == "constant":
            mag = t.full((rows, n), float(m["value"]))
        elif m["kind"] == "uniform":
            mag = m["low"] + (m["high"] - m["low"]) * t.rand(rows, n, generator=g)
        else:
            mag = -m["mean"] * t.log1p(-t.rand(rows, n, generator=g))
        x = (fires * mag) @ self.F
        if c["noise"] > 0:
            x = x + c["noise"] * t.randn(x.shape, generator=g)
        return x


def unit_rows(w):  # w: [dSae, d]
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


def geometric_median(x, iters=100, tol=1e-5):
    guess = x.mean(0)
    for _ in range(iters):
        prev = guess
        w = 1 / (x - guess).norm(dim=1).clamp_min(1e-12)
        guess = (w[:, None] * x).sum(0) / w.sum()
        if (guess - prev).norm() < tol:
            break
    return guess


def lr_lambda(steps, warmup):
    return lambda s: min(1.0, s / warmup) if warmup > 0 else 1.0


def project_decoder_grad(w):  # w: [dSae, d], rows unit: drop the gradient along each row
    if w.grad is not None:
        u = unit_rows(w.data)
        w.grad -= (w.grad * u).sum(1, keepdim=True) * u


class BatchTopK(t.nn.Module):
    def __init__(self, d, m, k, groups=None):
        super().__init__()
        w = unit_rows(t.nn.init.kaiming_uniform_(t.empty(m, d)))
        self.W_dec = t.nn.Parameter(w)  # [m, d]
        self.W_enc = t.nn.Parameter(w.T.clone())  # [d, m]
        self.b_enc = t.nn.Parameter(t.zeros(m))
        self.b_dec = t.nn.Parameter(t.zeros(d))
        self.k, self.threshold, self.groups = k, -1.0, groups or [m]

    def post(self, x):
        return t.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def encode(self, x):  # inference: one threshold
        a = self.post(x)
        return a * (a > self.threshold)


def train_batchtopk(cfg, data, k, groups, steps, seed):
    t.manual_seed(seed)
    d, m, batch = cfg["dIn"], cfg["dSae"], cfg["batchSize"]
    ae = BatchTopK(d, m, k, groups)
    opt = t.optim.Adam(ae.parameters(), lr=cfg["lr"], betas=(0.9, 0.999))
    warm = min(1000, steps // 5)
    sched = t.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps, warm))
    since_fired = t.zeros(m, dtype=t.long)
    weights = [1 / len(ae.groups)] * len(ae.groups)
    for step in range(steps):
        x = data.batch(batch)
        if step == 0:
            ae.b_dec.data = geometric_median(x)
        a = ae.post(x)
        top = a.flatten().topk(k * batch, sorted=False)
        f = t.zeros_like(a).flatten().scatter_(0, top.indices, top.values).reshape(a.shape)
        if step > warm:
            with t.no_grad():
                act = f[f > 0]
                mn = float(act.min()) if act.numel() else 0.0
                ae.threshold = mn if ae.threshold < 0 else 0.999 * ae.threshold + 0.001 * mn
        # nested reconstructions (one group: plain BatchTopK)
        recon, losses, start = ae.b_dec.expand_as(x), [], 0
        for size, w in zip(ae.groups, weights):
            recon = recon + f[:, start : start + size] @ ae.W_dec[start : start + size]
            losses.append(w * (x - recon).pow(2).sum(-1).mean())
            start += size
        loss = t.stack(losses).sum() if len(losses) == 1 else t.stack(losses).mean()
        fired = (f > 0).any(0)
        since_fired += batch
        since_fired[fired] = 0
        dead = since_fired >= 10_000_000
        if dead.any():
            resid = (x - recon).detach()
            kk = min(d // 2, int(dead.sum()))
            aux = t.where(dead[None], a, t.tensor(-math.inf)).topk(kk, sorted=False)
            fa = t.zeros_like(a).scatter_(1, aux.indices, aux.values)
            l2 = (resid - fa @ ae.W_dec).pow(2).sum(-1).mean()
            denom = (resid - resid.mean(0)).pow(2).sum(-1).mean()
            loss = loss + (1 / 32) * (l2 / denom).nan_to_num(0.0)
        opt.zero_grad()
        loss.backward()
        project_decoder_grad(ae.W_dec)
        t.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        sched.step()
        ae.W_dec.data = unit_rows(ae.W_dec.data)
    return ae.encode, ae.W_dec.data, lambda f: f @ ae.W_dec + ae.b_dec


class Step(t.autograd.Function):
    @staticmethod
    def forward(ctx, x, theta, eps):
        ctx.save_for_backward(x, theta)
        ctx.eps = eps
        return (x > theta).to(x)

    @staticmethod
    def backward(ctx, g):
        x, theta = ctx.saved_tensors
        k = ((x - theta).abs() < ctx.eps / 2).to(x)
        return t.zeros_like(x), (-(1 / ctx.eps) * k * g).sum(0), None


class Jump(t.autograd.Function):
    @staticmethod
    def forward(ctx, x, theta, eps):
        ctx.save_for_backward(x, theta)
        ctx.eps = eps
        return x * (x > theta).to(x)

    @staticmethod
    def backward(ctx, g):
        x, theta = ctx.saved_tensors
        k = ((x - theta).abs() < ctx.eps / 2).to(x)
        return (x > theta).to(x) * g, (-(theta / ctx.eps) * k * g).sum(0), None


def train_dl_jumprelu(cfg, data, target, steps, seed):
    t.manual_seed(seed)
    d, m, batch = cfg["dIn"], cfg["dSae"], cfg["batchSize"]
    w = unit_rows(t.nn.init.kaiming_uniform_(t.empty(m, d)))
    W_dec, W_enc = t.nn.Parameter(w), t.nn.Parameter(w.T.clone())
    b_enc, b_dec = t.nn.Parameter(t.zeros(m)), t.nn.Parameter(t.zeros(d))
    theta = t.nn.Parameter(t.full((m,), 0.001))
    params = [W_enc, b_enc, W_dec, b_dec, theta]
    opt = t.optim.Adam(params, lr=cfg["lr"], betas=(0.0, 0.999), eps=1e-8)
    warm = min(1000, steps // 5)
    sparsity_warm = min(2000, steps // 2)
    sched = t.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps, warm))
    eps = 0.001
    for step in range(steps):
        x = data.batch(batch)
        pre = x @ W_enc + b_enc
        f = Jump.apply(pre, theta, eps)
        recon = f @ W_dec + b_dec
        mse = (x - recon).pow(2).sum(-1).mean()
        l0 = Step.apply(f, theta, eps).sum(-1).mean()
        loss = mse + ((l0 / target) - 1).pow(2) * min(1.0, step / sparsity_warm)
        opt.zero_grad()
        loss.backward()
        project_decoder_grad(W_dec)
        t.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        W_dec.data = unit_rows(W_dec.data)
    encode = lambda x: t.relu((x @ W_enc + b_enc) * ((x @ W_enc + b_enc) > theta))
    return encode, W_dec.data, lambda f: f @ W_dec + b_dec


def train_saelens_jumprelu(cfg, data, coef, steps, seed):
    t.manual_seed(seed)
    d, m, batch = cfg["dIn"], cfg["dSae"], cfg["batchSize"]
    w = t.nn.init.kaiming_uniform_(t.empty(m, d))
    w = 0.1 * unit_rows(w)
    W_dec, W_enc = t.nn.Parameter(w), t.nn.Parameter(w.T.clone())
    b_enc, b_dec = t.nn.Parameter(t.zeros(m)), t.nn.Parameter(t.zeros(d))
    log_theta = t.nn.Parameter(t.full((m,), math.log(0.01)))
    params = [W_enc, b_enc, W_dec, b_dec, log_theta]
    opt = t.optim.Adam(params, lr=cfg["lr"], betas=(0.9, 0.999))
    eps = 0.05
    for step in range(steps):
        x = data.batch(batch)
        pre = x @ W_enc + b_enc
        theta = log_theta.exp()
        f = Jump.apply(pre, theta, eps)
        mse = (x - (f @ W_dec + b_dec)).pow(2).sum(-1).mean()
        l0 = Step.apply(pre, theta, eps).sum(-1).mean()
        loss = mse + coef * l0
        opt.zero_grad()
        loss.backward()
        opt.step()

    def encode(x):
        pre = x @ W_enc + b_enc
        return t.relu(pre) * (pre > log_theta.exp())

    return encode, W_dec.data, lambda f: f @ W_dec + b_dec


def train_dl_gated(cfg, data, l1, steps, seed):
    t.manual_seed(seed)
    d, m, batch = cfg["dIn"], cfg["dSae"], cfg["batchSize"]
    w = unit_rows(t.randn(m, d))
    W_dec, W_enc = t.nn.Parameter(w), t.nn.Parameter(w.T.clone())
    b_dec = t.nn.Parameter(t.zeros(d))
    r_mag, b_gate, b_mag = (t.nn.Parameter(t.zeros(m)) for _ in range(3))
    params = [W_enc, W_dec, b_dec, r_mag, b_gate, b_mag]
    opt = t.optim.Adam(params, lr=cfg["lr"], betas=(0.0, 0.999))
    warm = min(1000, steps // 5)
    sparsity_warm = min(2000, steps // 2)
    sched = t.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps, warm))

    def parts(x):
        enc = (x - b_dec) @ W_enc
        pi_gate = enc + b_gate
        f = (pi_gate > 0).to(x) * t.relu(r_mag.exp() * enc + b_mag)
        return f, t.relu(pi_gate)

    for step in range(steps):
        x = data.batch(batch)
        f, gate = parts(x)
        recon = f @ W_dec + b_dec
        recon_gate = gate @ W_dec.detach() + b_dec.detach()
        loss = (x - recon).pow(2).sum(-1).mean() + l1 * min(1.0, step / sparsity_warm) * gate.sum(-1).mean() + (x - recon_gate).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        project_decoder_grad(W_dec)
        opt.step()
        sched.step()
        W_dec.data = unit_rows(W_dec.data)
    return (lambda x: parts(x)[0]), W_dec.data, lambda f: f @ W_dec + b_dec


@t.no_grad()
def score(cfg, F, X, encode, W_dec, decode):
    f = encode(X)
    l0 = float((f > 0).sum(1).float().mean())
    xh = decode(f)
    fvu = float((X - xh).pow(2).sum() / (X - X.mean(0)).pow(2).sum())
    dead = float(((f > 0).sum(0) == 0).float().mean())
    cos = unit_rows(F) @ unit_rows(W_dec).T  # [n, m]
    best = cos.max(1).values
    return {"mmcs": float(best.mean()), "recovered": float((best > cfg["threshold"]).float().mean()), "l0": l0, "fvu": fvu, "deadFraction": dead}


def search(cfg, run, start, log):
    """A coefficient whose short run lands near the target L0 (L0 falls as it grows): 4x steps, then log-log bisection."""
    target, probes, value = cfg["targetL0"], [], start
    for _ in range(cfg["maxProbes"]):
        l0 = run(value, cfg["searchSteps"])["l0"]
        probes.append((value, l0))
        log(f"  probe {value:.4g} -> L0 {l0:.2f}")
        if abs(l0 / target - 1) <= cfg["tolerance"]:
            break
        lo = [v for v, l in probes if l > target]  # too dense: raise the coefficient
        hi = [v for v, l in probes if l < target]
        if lo and hi:
            a, b = max(lo), min(hi)
            la, lb = dict(probes)[a], dict(probes)[b]
            frac = math.log(target / la) / math.log(lb / la) if la > 0 and lb > 0 and la != lb else 0.5
            value = math.exp(math.log(a) + min(0.9, max(0.1, frac)) * math.log(b / a))
        else:
            value = max(lo) * 4 if lo else min(hi) / 4
    return min(probes, key=lambda p: abs(math.log(max(p[1], 1e-6) / target)))[0]


def main():
    cfg = json.load(open(sys.argv[1]))
    t.set_num_threads(cfg.get("threads", 1))
    F = t.from_numpy(np.load(cfg["featuresFile"]).astype(np.float32))
    X = t.from_numpy(np.load(cfg["evalFile"]).astype(np.float32))
    log = lambda s: print(s, file=sys.stderr, flush=True)
    data = lambda: Data(cfg, F)
    k = max(1, round(cfg["targetL0"]))
    seed, steps = cfg["seed"], cfg["steps"]
    prefixes = cfg["prefixes"]
    groups = [b - a for a, b in zip([0] + prefixes[:-1], prefixes)]
    out = []
    for peer in cfg["peers"]:
        start = time.time()
        log(f"{peer}:")
        value, knob = None, None
        if peer == "dl-batchtopk":
            knob, value = "k", k
            trained = train_batchtopk(cfg, data(), k, None, steps, seed)
        elif peer == "dl-matryoshka":
            knob, value = "k", k
            trained = train_batchtopk(cfg, data(), k, groups, steps, seed)
        elif peer == "dl-jumprelu":
            knob, value = "target_l0", cfg["targetL0"]
            trained = train_dl_jumprelu(cfg, data(), cfg["targetL0"], steps, seed)
        else:
            fn, knob, start_value = (train_dl_gated, "l1_penalty", 0.1) if peer == "dl-gated" else (train_saelens_jumprelu, "l0_coefficient", 1.0)
            run = lambda v, s: score(cfg, F, X, *fn(cfg, data(), v, s, seed))
            value = search(cfg, run, start_value, log)
            trained = fn(cfg, data(), value, steps, seed)
        r = score(cfg, F, X, *trained)
        r.update({"architecture": peer, "knob": knob, "value": value, "seconds": time.time() - start})
        log(f"  {peer}: MMCS {r['mmcs']:.4f}  L0 {r['l0']:.2f}  dead {100 * r['deadFraction']:.1f}%")
        out.append(r)
    json.dump({"peers": out}, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
