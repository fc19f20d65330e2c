"""The settings of DiffuseReg (`diffusereg`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig

DENOISERS = ("swin_unetr", "unet", "uvit", "swin_unet", "transmorph")


@dataclass
class DiffuseRegConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("denoiser", "sampling", "sampling_steps")
    INFERENCE: ClassVar[tuple[str, ...]] = ("sampling", "sampling_steps", "eta", "save_steps", "trajectory")
    iterations: int = 120000           # 1200 epochs x 100 ACDC training pairs (official I120000_E1200)
    lr: float = 1e-4                   # AdamW, cosine annealing to lr_min over the run
    weight_decay: float = 1e-4
    lr_min: float = 1e-6
    # phi0: the lowRes VTN's checkpoint: the pretraining stage's file or the official E2000.pth
    # ({"cascade <i>": state}); after loading, its architecture (so config.json rebuilds it)
    phi0: Any = None
    use_phi0: bool = True              # False: Table 2 row 6 (noise for x0, similarity loss only)
    flow_stats: str = "train"          # "train": per-axis mean / std of phi0 on the training pairs; "official"
    denoiser: str = "swin_unetr"
    network: str = "official"          # "official" (feature 120, 437 M) or "small" (feature 12; tests)
    denoiser_kwargs: dict = field(default_factory=dict)
    cond_mask: bool = True             # the tiled shift mask in the conditional attention (Table 2 "CM")
    time_resblocks: bool = True        # time in the ResBlocks (Table 2 "RT")
    fusion: str = "layerwise"          # "concat": input-level fusion through a 13-layer U-ViT (Table 2 row 5)
    lambda_diff: float = 1.0
    lambda_sim: float = 1.0            # lambda_1 (paper); 0 with lambda_reg 0: Table 2 row 2
    lambda_reg: float = 0.1            # lambda_2 (paper)
    ssim_window: int = 9               # paper: kernel size 9; sigma 1.5 (official SSIM3D default)
    ssim_sigma: float = 1.5
    diffusion_steps: int = 2000        # T (own names: other methods' "timesteps" / "sampler" must not get these)
    beta_start: float = 1e-6
    beta_end: float = 1e-2
    sampling: str = "ddpm"             # "ddpm": ancestral (official); "ddim"
    sampling_steps: int = 0            # DDIM steps (0 or more than T: every timestep); DDPM takes every timestep
    eta: float = 0.0                   # DDIM's eta (1 on the full schedule = DDPM's ancestral step)
    save_steps: list = field(default_factory=list)   # sampling steps done at which fields are saved; [] = every 10 %
    trajectory: str = "x0"             # saved fields: "x0" the denoised estimate (the official code's Fig. 3 path), "xt"
    augment: bool = False              # the official random flips of H, W and H <-> W transposition
    image_norm: str = "joint_zscore"   # "joint_zscore" (official code) or "none"
    axes: str = "zyx"                  # the networks see the array axes reversed (NIfTI x, y, z -> z, y, x: the
                                       # official SimpleITK arrays, slices first, as its (2, 4, 4) windows
                                       # and its phi0 statistics expect); "xyz": as stored
    inter_subject: bool = False        # ES -> ED of one patient (paper)

    def resolve(self, ndim: int, given: set[str]) -> None:
        if ndim != 3:
            raise InputError(f"diffusereg registers 3D images (its VTN and denoiser are 3D), got {ndim}D")
        for key, known in (("flow_stats", ("train", "official")), ("denoiser", DENOISERS),
                           ("network", ("official", "small")), ("fusion", ("layerwise", "concat")),
                           ("sampling", ("ddpm", "ddim")), ("trajectory", ("x0", "xt")), ("axes", ("zyx", "xyz")), ("image_norm", ("joint_zscore", "none"))):
            if getattr(self, key) not in known:
                raise InputError(f"diffusereg: {key} = {getattr(self, key)!r}: one of {', '.join(known)}")
        if self.sampling_steps < 0:
            raise InputError("diffusereg: sampling_steps must be >= 0")
        if self.sampling == "ddpm" and 0 < self.sampling_steps < self.diffusion_steps:
            raise InputError("diffusereg: ddpm sampling takes every timestep (sampling_steps 0); use ddim for fewer")
        if not 0 <= self.eta <= 1:
            raise InputError(f"diffusereg: eta must lie in [0, 1], got {self.eta}")

    def steps(self) -> int:
        """Reverse steps taken: every timestep for DDPM, else sampling_steps (at most T)."""
        if self.sampling == "ddpm" or not self.sampling_steps:
            return self.diffusion_steps
        return min(self.sampling_steps, self.diffusion_steps)

    def make_optimizer(self, params):
        import torch

        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def make_scheduler(self, optimizer, iterations: int):
        """Cosine annealing from lr to lr_min over the run (closed form, so a resumed run continues)."""
        import torch

        lo = self.lr_min / self.lr

        def factor(k: int) -> float:
            return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(k, iterations) / iterations))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def describe(self, key: str) -> str:
        if key == "sampling_steps":
            return str(self.steps())
        return str(getattr(self, key))
