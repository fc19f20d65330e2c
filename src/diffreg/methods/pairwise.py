"""Unsupervised pairwise learning (VoxelMorph, Balakrishnan et al. 2019): a backbone maps
(moving, fixed) to a displacement, trained by similarity(warp(moving), fixed) + λ·regulariser(u).

The backbone, the similarity and the regulariser are names in their registries, so the loss
grids of the papers (LNCC, MSE, MIND, NGF, feature similarities, ...) are configuration only.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch

from .. import spatial
from ..losses import build_regulariser, build_similarity
from ..nets import build_backbone
from .base import METHODS, Method, TrainingSet, pad_to_multiple

# VoxelMorph's NCC: squared local cc in a 9^d box window; λ=1 with Grad-l2 (the paper's NCC setting).
DEFAULTS = {
    "backbone": "voxelmorph",
    "backbone_kwargs": {"variant": "vm2"},
    "similarity": "lncc",
    "similarity_kwargs": {"window": "box", "size": 9, "squared": True},
    "regulariser": "diffusion",
    "regulariser_kwargs": {},
    "lambda_reg": 1.0,
    "iterations": 1500,
    "batch_size": 1,
    "lr": 1e-4,
    "seed": 0,
    "log_every": 25,
    "pad_multiple": 16,
    "inter_subject": True,  # False: moving and fixed from one subject (e.g. ED -> ES frames)
}


@METHODS.register("voxelmorph")
class PairwiseMethod(Method):
    name = "voxelmorph"

    @classmethod
    def settings(cls, ndim: int) -> set[str]:
        """The config keys this method accepts (the planner checks every row against them)."""
        return set(DEFAULTS)

    def __init__(self, ndim: int, config: dict, device: torch.device):
        merged = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
        super().__init__(ndim, merged, device)
        c = self.config
        self.net = build_backbone(c["backbone"], ndim, **c["backbone_kwargs"]).to(device)
        self.similarity = build_similarity(c["similarity"], **c["similarity_kwargs"]).to(device)
        self.regulariser = build_regulariser(c["regulariser"], **c["regulariser_kwargs"]).to(device)

    def _predict(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        x, crop = pad_to_multiple(torch.cat([moving, fixed], dim=1), self.config["pad_multiple"])
        return self.net(x)[tuple(crop)]

    def fit(self, data: TrainingSet, log_path: Path | None = None) -> dict:
        c = self.config
        rng = np.random.default_rng(c["seed"])
        torch.manual_seed(c["seed"])
        opt = torch.optim.Adam(self.net.parameters(), lr=c["lr"])
        self.net.train()
        rows, t0, n_iter = [], time.perf_counter(), int(c["iterations"])
        for it in range(1, n_iter + 1):
            moving, fixed = (t.to(self.device) for t in data.sample(rng, c["batch_size"], c.get("inter_subject", True)))
            disp = self._predict(moving, fixed)
            sim = self.similarity(spatial.warp(moving, disp), fixed)
            reg = self.regulariser(disp)
            loss = sim + c["lambda_reg"] * reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rows.append((it, loss.item(), sim.item(), reg.item(), time.perf_counter() - t0))
            if it % c["log_every"] == 0 or it == n_iter:
                speed = it / (time.perf_counter() - t0)
                print(f"[train {self.name}] iter {it}/{n_iter} loss {loss.item():.4f} "
                      f"(sim {sim.item():.4f}, reg {reg.item():.4f}) {speed:.2f} it/s", flush=True)
        if log_path is not None:
            with open(log_path, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["iteration", "loss", "similarity_loss", "regulariser", "elapsed_s"])
                w.writerows(rows)
        losses = [r[1] for r in rows]
        k = max(1, len(losses) // 10)
        return {"iterations": n_iter, "train_time_s": round(time.perf_counter() - t0, 2),
                "loss_first_10pct": float(np.mean(losses[:k])), "loss_last_10pct": float(np.mean(losses[-k:]))}

    @torch.no_grad()
    def register(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        return self._predict(moving.to(self.device), fixed.to(self.device))

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)
