"""Adam for the fits: a few small tensors, tens of steps, in a process that may do nothing else.

``torch.optim.Adam`` would do, but every ``torch.optim.Optimizer`` imports ``torch._dynamo``
the first time one is made (its methods are wrapped to keep the compiler out), which costs
1.8 s on the reference machine: more than a quarter of reconstructing one photo from the
command line. ``FitAdam`` runs the kernel ``torch.optim.Adam(fused=True)`` runs
(``torch._fused_adam_``, one call per parameter group and step) on state laid out as Adam
keeps it, so its steps are the same numbers (``tests/test_optim.py`` holds it to that).
Training keeps ``torch.optim``: there the import is paid once per hours of work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class FitAdam:
    """Adam without weight decay or AMSGrad, over parameter groups.

    Args:
        groups: ``[{"params": [tensors], "lr": float}, ...]`` as ``torch.optim`` takes them;
            each group's ``lr`` may be changed between steps (``param_groups[k]["lr"]``).
        betas, eps: as ``torch.optim.Adam``'s.
    """

    def __init__(self, groups: Iterable[dict], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:  # fmt: skip
        self.param_groups = [{"params": list(g["params"]), "lr": float(g["lr"])} for g in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[Tensor, dict[str, Tensor]] = {}
        for g in self.param_groups:
            # one kernel call per group: its tensors share a dtype and device
            if len({(p.dtype, p.device) for p in g["params"]}) > 1:
                raise ValueError("FitAdam: a group's parameters must share one dtype and device")
            for p in g["params"]:
                if not (p.is_floating_point() and p.requires_grad and p.is_leaf):
                    raise ValueError(f"FitAdam: parameters must be floating-point leaf tensors "
                                     f"that need gradients, got {p.dtype}, requires_grad="
                                     f"{p.requires_grad}, leaf={p.is_leaf}")  # fmt: skip
                self.state[p] = {
                    # float32 on the parameter's device, as Adam keeps it for the fused kernel
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``, as ``torch.optim``'s default)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every parameter that has a gradient."""
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            states = [self.state[p] for p in params]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                steps,
                amsgrad=False,
                lr=g["lr"],
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )


def cosine_schedule(opt: FitAdam, steps: int, eta_min: float) -> Callable[[int], None]:
    """``CosineAnnealingLR`` in closed form: ``set(t)`` gives every group the learning rate
    of step t, eta_min + (base - eta_min) (1 + cos(pi t / steps)) / 2 (the scheduler's own
    recursion costs more than a fused Adam step)."""
    bases = [g["lr"] for g in opt.param_groups]

    def set_step(t: int) -> None:
        c = 0.5 * (1.0 + math.cos(math.pi * t / steps))
        for g, base in zip(opt.param_groups, bases, strict=True):
            g["lr"] = eta_min + (base - eta_min) * c

    return set_step
