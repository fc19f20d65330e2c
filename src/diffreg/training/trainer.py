"""The one training loop of every learned method (docs/methods.md).

Seeded sampling, one Adam over every trainable parameter of the method's networks, a progress
line every `log_every` iterations with the speed, training_log.csv with every named term, and a
summary with the mean loss of the first and last 10 % of the iterations.

Networks whose parameters are all frozen (`freeze`) stay in eval mode and out of the optimiser:
gradients still flow through them to the networks before them (a pretrained encoder of a loss).
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..io import atomic_path
from . import distributed
from .checkpoint import Checkpoint
from .config import TrainerConfig
from .objective import Objective
from .training_set import TrainingSet


# exit code of a diverged training or a non-finite result: a data/config error (EX_DATAERR),
# outside the exit codes conf/base.config retries as out-of-memory or time-out
DIVERGED_EXIT = 65


class TrainingDiverged(InputError):
    """A loss term, a gradient or a result is NaN or infinite (`diffreg train` exits DIVERGED_EXIT)."""
    exit_code = DIVERGED_EXIT


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in values.items())


# what a user can do about a diverged `diffreg train`; pretraining loops pass their own
ADVICE = "lower --lr or check --lambda-reg; no model written"


def check_finite_terms(name: str, it: int, terms: dict[str, torch.Tensor], advice: str = ADVICE) -> dict[str, float]:
    """The terms as floats; TrainingDiverged naming the step and every term when one is NaN or
    infinite. Checked before `backward`: NaN reaching the backward kernels of grid_sample crashes
    the process on CPU (segmentation fault, no message)."""
    values = {k: float(v.detach()) for k, v in terms.items()}
    bad = [k for k, v in values.items() if not np.isfinite(v)]
    if bad:
        raise TrainingDiverged(f"training {name} diverged at iteration {it}: non-finite {', '.join(bad)} "
                               f"({_fmt(values)}); {advice}")
    return values


def check_finite_grads(name: str, it: int, params: list[nn.Parameter], values: dict[str, float],
                       advice: str = ADVICE) -> None:
    """TrainingDiverged when a gradient is NaN or infinite (checked before the optimiser step)."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads and not bool(torch.isfinite(torch.stack([g.detach().abs().max() for g in grads])).all()):
        raise TrainingDiverged(f"training {name} diverged at iteration {it}: non-finite gradient "
                               f"(loss terms {_fmt(values)}); {advice}")


def freeze(module: nn.Module) -> nn.Module:
    """No gradient for, and no update of, `module`'s weights (a pretrained network in eval mode)."""
    module.requires_grad_(False)
    return module.eval()


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def trainable_parameters(nets: nn.ModuleDict) -> list[nn.Parameter]:
    """Every parameter that takes gradients, once (networks may share modules)."""
    seen, out = set(), []
    for p in nets.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def set_train_mode(nets: nn.Module) -> None:
    """Train mode, except for frozen parts (all their weights without gradient): a frozen
    encoder keeps its batch-norm statistics and drops no activations."""
    nets.train()
    for m in nets.modules():
        params = list(m.parameters())
        if params and not any(p.requires_grad for p in params):
            m.eval()


class Trainer:
    def __init__(self, config: TrainerConfig, device: torch.device, name: str = "method"):
        self.config = config
        self.device = device
        self.name = name
        self.optimizer: torch.optim.Optimizer | None = None

    def log(self, text: str) -> None:
        print(f"[train {self.name}] {text}", flush=True)

    def fit(self, nets: nn.ModuleDict, objective: Objective, data: TrainingSet,
            log_path: Path | None = None, checkpoint: Checkpoint | None = None) -> dict:
        c = self.config
        rng = np.random.default_rng(c.seed)
        torch.manual_seed(c.seed)
        params = trainable_parameters(nets)
        if not params:
            raise ValueError(f"{self.name}: no trainable parameter in networks {list(nets)}")
        self.optimizer = opt = c.make_optimizer(params)     # Adam unless the method's config says otherwise
        set_train_mode(nets)
        rows: list[dict[str, float]] = []
        t0, n_iter, start = time.perf_counter(), int(c.iterations), 1
        rank, size = distributed.world()
        model = distributed.wrap(nets, self.device)      # DDP under torchrun (training.distributed)
        if rank > 0:
            log_path = None                              # rank 0 writes the log and the checkpoints
        state = checkpoint.load(self.log) if checkpoint else None
        if state is not None:
            start = Checkpoint.restore(state, nets, opt, rng) + 1
            rows = list(state["rows"])
            t0 -= rows[-1]["elapsed_s"] if rows else 0.0
            self.log(f"resumed from iteration {start - 1} (checkpoint {checkpoint.path})")
        schedule = c.make_scheduler(opt, n_iter)
        for _ in range(start - 1 if schedule is not None else 0):   # a resumed schedule goes on where it was
            schedule.step()
        for it in range(start, n_iter + 1):
            batch = to_device(distributed.shard(objective.sample(data, rng, c.batch_size), rank, size), self.device)
            terms = objective(model, batch)
            values = distributed.mean_values(check_finite_terms(self.name, it, terms))
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            check_finite_grads(self.name, it, params, values)
            opt.step()
            if schedule is not None:
                schedule.step()
            rows.append({"iteration": it, **values, "elapsed_s": time.perf_counter() - t0})
            if checkpoint and rank == 0 and checkpoint.every > 0 and it % checkpoint.every == 0 and it < n_iter:
                checkpoint.save(it, nets, opt, rng, rows)
                self.log(f"checkpoint at iteration {it}")
            if rank == 0 and (it % c.log_every == 0 or it == n_iter):
                speed = it / (time.perf_counter() - t0)
                parts = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "loss")
                self.log(f"iter {it}/{n_iter} loss {values['loss']:.4f}"
                         + (f" ({parts})" if parts else "") + f" {speed:.2f} it/s")
        if log_path is not None:
            _write_log(log_path, rows)
        losses = [r["loss"] for r in rows]
        k = max(1, len(losses) // 10)
        return {"iterations": n_iter, "train_time_s": round(time.perf_counter() - t0, 2),
                "loss_first_10pct": float(np.mean(losses[:k])), "loss_last_10pct": float(np.mean(losses[-k:]))}


def _write_log(path: Path, rows: list[dict[str, float]]) -> None:
    """iteration, loss, the other terms (in the objective's order), elapsed_s."""
    columns = list(rows[0]) if rows else ["iteration", "loss", "elapsed_s"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(rows)
