"""Objectives: what one training step samples and which loss terms it computes.

The Trainer owns the loop, the optimiser and the networks; an Objective only says
- `sample(data, rng, batch_size)`: the step's batch (any nest of tensors; the Trainer moves it
  to the device), drawn with the Trainer's seeded generator;
- `__call__(nets, batch)`: a dict of named scalar terms, the total under "loss".
The networks come in as an argument rather than being held, so that the Trainer may hand over
wrapped ones (DDP, AMP, Fabric) without the objective knowing.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

from .training_set import TrainingSet


class Objective(ABC):
    def sample(self, data: TrainingSet, rng: np.random.Generator, batch_size: int) -> Any:
        """Default: (moving, fixed) pairs from different subjects."""
        return data.sample(rng, batch_size, True)

    @abstractmethod
    def __call__(self, nets: nn.ModuleDict, batch: Any) -> dict[str, torch.Tensor]: ...
