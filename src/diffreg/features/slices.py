"""Random 2D slices of 3D volumes, for 2D feature models on volumes (DGIR, Sec. 3.2).

Each step picks one axis at random and n distinct slice indices along it; the same slices are
taken from the warped and the fixed volume, so their features compare like with like. Over
training the draws cover the whole volume.
"""
from __future__ import annotations

import torch


class SliceSampler:
    def __init__(self, n: int = 4, axes: tuple[int, ...] = (0, 1, 2)):
        if n < 1:
            raise ValueError(f"number of slices must be >= 1, got {n}")
        self.n = n
        self.axes = tuple(axes)

    def draw(self, shape: tuple[int, int, int], generator: torch.Generator | None = None) -> tuple[int, torch.Tensor]:
        """(axis, indices): one spatial axis of a volume of `shape` and up to n distinct indices."""
        axis = self.axes[int(torch.randint(len(self.axes), (1,), generator=generator))]
        size = shape[axis]
        idx = torch.randperm(size, generator=generator)[: min(self.n, size)]
        return axis, idx

    @staticmethod
    def take(vol: torch.Tensor, axis: int, idx: torch.Tensor) -> torch.Tensor:
        """Slices of vol (B, C, X, Y, Z) along spatial `axis` as a 2D batch (B*n, C, ., .),
        batch-major: the slices of volume 0 first."""
        if vol.ndim != 5:
            raise ValueError(f"expected a 3D batch (B, C, X, Y, Z), got {tuple(vol.shape)}")
        s = vol.index_select(2 + axis, idx.to(vol.device))
        s = s.movedim(2 + axis, 1)                  # (B, n, C, ., .)
        return s.reshape(-1, *s.shape[2:])

    def __call__(self, warped: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Identical slices of both volumes, as two 2D batches."""
        if warped.shape != fixed.shape:
            raise ValueError(f"shapes differ: {tuple(warped.shape)} vs {tuple(fixed.shape)}")
        axis, idx = self.draw(tuple(warped.shape[2:]), generator)
        return self.take(warped, axis, idx), self.take(fixed, axis, idx)
