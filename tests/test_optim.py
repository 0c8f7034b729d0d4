"""The fits' Adam against ``torch.optim.Adam`` (fused: the same kernel, so the same numbers;
its other implementation and a textbook step in NumPy, to rounding), its schedule against
``CosineAnnealingLR``, and the start-up cost it exists to avoid."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from monohand.optim import FitAdam, cosine_schedule


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(3, 7, generator=g, dtype=torch.float64)
    params = [torch.randn(3, 7, generator=g), torch.randn(5, generator=g)]
    return target, params


def _loss(params, target, t: int):
    a, b = params
    # the second tensor only every other step: a step without its gradient leaves it alone
    extra = (b.square() * torch.arange(5)).sum() if t % 2 == 0 else 0.0
    return ((a.double() - target) ** 4).sum() + extra


@pytest.mark.parametrize("fused", [True, False])
def test_steps_are_torch_adams(fused):
    """60 steps, two groups, learning rates moved by the schedule: equal to Adam(fused=True)
    bit for bit; to Adam's default implementation up to rounding."""
    target, start = _problem()
    runs = []
    for kind in ("ours", "torch"):
        ps = [p.clone().requires_grad_() for p in start]
        groups = [{"params": [ps[0]], "lr": 0.05}, {"params": [ps[1]], "lr": 0.01}]
        opt = FitAdam(groups) if kind == "ours" else torch.optim.Adam(groups, fused=fused)
        schedule = cosine_schedule(opt, 60, eta_min=0.001)
        for t in range(60):
            opt.zero_grad()
            _loss(ps, target, t).backward()
            opt.step()
            schedule(t + 1)
        runs.append([p.detach() for p in ps])
    for ours, ref in zip(*runs, strict=True):
        if fused:
            assert torch.equal(ours, ref)
        else:
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert (runs[0][0] - start[0]).abs().max() > 0.5  # it moved


def test_one_step_is_the_textbook_step():
    """Adam's update written out in NumPy (Kingma and Ba, bias-corrected), float64."""
    rng = np.random.default_rng(1)
    x0, grads = rng.normal(size=4), rng.normal(size=(3, 4))
    lr, (b1, b2), eps = 0.1, (0.9, 0.999), 1e-8
    x, m, v = x0.copy(), np.zeros(4), np.zeros(4)
    p = torch.tensor(x0, requires_grad=True)
    opt = FitAdam([{"params": [p], "lr": lr}])
    for t, gr in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * gr
        v = b2 * v + (1 - b2) * gr**2
        x = x - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        p.grad = torch.tensor(gr)
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-12, atol=1e-12)


def test_schedule_is_cosine_annealing():
    def groups():
        return [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in (0.04, 0.004)]

    ref, ours = torch.optim.Adam(groups()), FitAdam(groups())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, 80, eta_min=0.002)
    step = cosine_schedule(ours, 80, eta_min=0.002)
    for t in range(80):
        ref.step()
        sched.step()
        step(t + 1)
        for a, b in zip(ref.param_groups, ours.param_groups, strict=True):
            assert a["lr"] == pytest.approx(b["lr"], abs=1e-15)


def test_parameters_must_be_trainable_leaves_of_one_kind_per_group():
    with pytest.raises(ValueError, match="need gradients"):
        FitAdam([{"params": [torch.zeros(2)], "lr": 0.1}])
    leaf = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="leaf=False"):
        FitAdam([{"params": [leaf * 2], "lr": 0.1}])
    other = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="share one dtype"):
        FitAdam([{"params": [leaf, other], "lr": 0.1}])
    FitAdam([{"params": [leaf], "lr": 0.1}, {"params": [other], "lr": 0.1}])  # apart: fine


def test_a_fit_does_not_import_the_compiler():
    """What the module is for: fitting a hand (``fit_hands``) leaves ``torch._dynamo``
    unimported, as ``torch.optim`` would not (1.8 s of a one-photo run)."""
    script = (
        "import sys, torch\n"
        "from monohand.fit import FitConfig, FitInputs, fit_hands\n"
        "from monohand.models.openhand import OpenHand\n"
        "from monohand.render.camera import project\n"
        "hand = OpenHand()\n"
        "K = torch.tensor([[[500.0, 0, 128], [0, 500, 128], [0, 0, 1]]])\n"
        "j = hand(transl=torch.tensor([[0.0, 0.0, 0.5]])).joints\n"
        "fit_hands(hand, FitInputs(project(j, K), torch.ones(1, 21), K), FitConfig(iters=3,"
        " iters_3d=1))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stdout
