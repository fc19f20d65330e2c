"""Training checkpoints that make a killed training resume where it stopped.

Every `every` iterations the Trainer writes the networks, the optimiser, both random states and
the log rows so far, atomically (a kill mid-write leaves the previous checkpoint intact). A
training started again with the same checkpoint path and fingerprint (method, settings, data)
continues from there and, on CPU, ends with bit-identical weights. The file is removed once the
model is saved. A checkpoint of another training (other fingerprint) is ignored with a line.

The pipeline keeps checkpoints outside the task's work directory (`--checkpoint_dir`, by default
<launch dir>/work/diffreg-checkpoints/<run>), so a task retried after a kill, a Slurm preemption or an
out-of-memory error, which runs in a new work directory, finds them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import atomic_path


def fingerprint(**parts: Any) -> str:
    """A short hash of everything that makes two trainings the same (JSON-able parts)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    path: Path
    every: int
    key: str

    def load(self, log) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file cannot happen (atomic writes), a foreign one can
            log(f"checkpoint {self.path} unreadable ({type(exc).__name__}); starting from iteration 0")
            return None
        if state.get("key") != self.key:
            log(f"checkpoint {self.path} belongs to another training; starting from iteration 0")
            return None
        return state

    def save(self, iteration: int, nets: nn.Module, optimizer: torch.optim.Optimizer,
             rng: np.random.Generator, rows: list[dict]) -> None:
        state = {"key": self.key, "iteration": iteration, "nets": nets.state_dict(),
                 "optimizer": optimizer.state_dict(), "numpy_rng": rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "rows": rows,
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    @staticmethod
    def restore(state: dict, nets: nn.Module, optimizer: torch.optim.Optimizer, rng: np.random.Generator) -> int:
        nets.load_state_dict(state["nets"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return int(state["iteration"])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
