"""DGIR: Diffusion-Guided Image Registration (Tursynbek et al., MICCAI 2025), and the loss grid
of its Table 1 on the same network.

An ICON multi-step U-Net (4 steps, 1/8 .. 1/1; `network`) is trained with Adam 1e-4 on
L = L_sim(A o phi, B) + lambda ||grad(phi - id)||^2. `loss` picks L_sim:

  diffusion   1 - LNCC on ADM features (block n, timestep t)          (DGIR, "Diffusion + LNCC")
  lncc, mse, mind, ngf                                                 (intensity baselines)
  deepsim     cosine on the encoder levels of an autoencoder            (Czolbe et al.)
  ae_lncc     1 - LNCC on autoencoder features                          ("AE + LNCC")
  vgg_lncc    1 - LNCC on VGG features, weights from `vgg_weights`      ("VGG + LNCC")
  dino_lncc   1 - LNCC on DINO features, weights from `dino_weights`    ("DINO + LNCC")

The autoencoder is trained here, on the training images of both modalities, before the
registration network. VGG/DINO without a weights file raise NeedsWeights (the row reads
"needs weights"). In 3D every feature loss uses random slices along one random axis per step.

Settings where the paper and the official code (uncbiag/dgir) differ take the names "paper" /
"official" (a number is used as is); docs/dgir.md has the table with each default and why:
- lam (lambda of Eq. 4, the regularisation weight on the paper's scale, from which `lambda_reg`,
  the weight of our regulariser, follows by reg_scale): paper 1 for all experiments (Sec. 3.2);
  official configs 1 (2D), 0.5 (3D).
- t: paper 50 (Table 1, Sec. 5); official 60 (hard-coded in the 2D NewLNCC), 50 (3D).
- block: 29 (2D) / 11 (3D) in both.
- network: "official" (the official tallUNet2 ICON chain, backbone "dgir_official", 19.0 M
  parameters in 2D, 70.7 M in 3D) or "small" (diffreg's VoxelMorph-style ICON net, backbone
  "icon", scales 8/4/2/1; the test profiles' network). The paper says only "multi-step U-Net".
- reg_scale: "official" (regulariser "diffusion_icon": the official sum over axes in [0, 1]
  coordinates times N^2 of the first axis; lambda_reg = lam) or "voxel" (regulariser
  "diffusion", mean over axes in voxels; lambda_reg = lam x D, equal to the official on cubic
  grids up to (N/(N-1))^2). The paper writes only ||grad(phi - id)||_F^2.
- lncc_eps: "official" (relu(var) + 1e-6 on features, + 1e-5 in the pixel LNCC, as the official
  code) or "clamp" (max(var, 1e-5)). The paper gives no epsilon.
- sigma: the paper gives none; the official configs use 4 (2D) / 5 (3D) on 256 x 256 images /
  224 x 192 x 160 volumes, in feature-map pixels whatever the block's stride. None (default)
  scales that sigma to the image size (equal to the official one at those sizes); "official"
  takes 4 / 5 as is.
- noise: "shared" (one noise image per pair, so aligned images have identical features, as the
  paper states) or "independent" (the official q_sample with fresh noise per image).
- lncc_border: "zeros" (the official Gaussian blur pads with zeros) or "normalized".
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..configs.dgir import DGIRConfig
from ..errors import InputError
from ..features import similarity as feature_similarities  # registers the feature similarities
from ..features.autoencoder import train_autoencoder
from ..features.base import NeedsWeights
from ..losses import build_regulariser, build_similarity
from ..nets import build_backbone
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .objective import PairwiseObjective
from .pairs import register_pair
from .result import RegistrationResult


# image side the official sigma refers to: 256 x 256 knees; 3D slices of 224 x 192 x 160 (mean 192)
SIGMA_SIDE = {2: 256.0, 3: 192.0}


@METHODS.register("dgir")
class DGIR(Method):
    """The ICON backbone trained by PairwiseObjective with a DGIR similarity (`loss`)."""
    name = "dgir"
    Config = DGIRConfig
    cfg: DGIRConfig

    def __init__(self, ndim: int, config: dict | DGIRConfig, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        self.nets["net"] = build_backbone(c.backbone, ndim, **c.backbone_kwargs).to(device)
        self.regulariser = build_regulariser(c.regulariser, **c.regulariser_kwargs).to(device)

    def build_similarity(self, data: TrainingSet | None = None) -> torch.nn.Module:
        c, loss = self.cfg, self.cfg.loss
        if c.sigma is None:
            c.sigma = self.scaled_sigma(data.shape if data is not None else None)
        lncc = feature_similarities.lncc_window(c.sigma, c.lncc_border, c.lncc_eps)
        if c.lncc_eps == "official":
            lncc["eps"] = 1e-5          # the official pixel LNCC: relu(var) + 1e-5
        if loss == "diffusion":
            if not c.feature_checkpoint:
                raise InputError("dgir: loss 'diffusion' needs feature_checkpoint (an ADM checkpoint; "
                                 "`diffreg pretrain --kind adm_natural_images` makes the offline one)")
            if not Path(c.feature_checkpoint).exists():
                raise InputError(f"{c.feature_checkpoint}: diffusion checkpoint not found")
            sim = build_similarity("diffusion", checkpoint=c.feature_checkpoint, block=c.block,
                                   t=c.t, sigma=c.sigma, noise=c.noise, slices=c.slices,
                                   border=c.lncc_border, eps=c.lncc_eps)
        elif loss == "lncc":
            sim = build_similarity("lncc", **lncc)
        elif loss in ("mse", "mind", "ngf"):
            sim = build_similarity(loss)
        elif loss in ("vgg_lncc", "dino_lncc"):
            kind = loss.split("_")[0]
            weights = getattr(c, f"{kind}_weights")
            if not weights:
                raise NeedsWeights(f"dgir: loss {loss} needs weights: give {kind}_weights "
                                   f"({'a torchvision VGG16' if kind == 'vgg' else 'a DINO/DINOv2 ViT'} state dict)")
            extra = {"layer": c.vgg_layer} if kind == "vgg" else {}
            sim = build_similarity(kind, weights=weights, sigma=c.sigma, slices=c.slices,
                                   border=c.lncc_border, eps=c.lncc_eps, **extra)
        else:  # deepsim, ae_lncc: an autoencoder trained on the training images of both modalities
            if data is None:
                raise ValueError(f"loss {loss} needs the training images")
            print(f"[train {self.name}] autoencoder on {2 * len(data.subjects)} training images", flush=True)
            ae = train_autoencoder(data.moving + data.fixed, iterations=int(c.ae_iterations),
                                   channels=c.ae_channels, seed=int(c.seed), device=str(self.device),
                                   log=lambda s: print(f"[train {self.name}] {s}", flush=True))
            if loss == "deepsim":
                sim = build_similarity("autoencoder", autoencoder=ae, measure="cosine",
                                       level=list(range(len(c.ae_channels))), slices=c.slices)
            else:
                sim = build_similarity("autoencoder", autoencoder=ae, level=int(c.ae_level),
                                       sigma=c.sigma, slices=c.slices, border=c.lncc_border,
                                       eps=c.lncc_eps)
        return sim.to(self.device)

    def scaled_sigma(self, shape) -> float:
        """The official sigma for an image of `shape`: windows keep the same fraction of the image
        (and of its feature maps) as in the official setting, so small toy images get small windows."""
        c = self.cfg
        if shape is None:
            return float(c.official_sigma)
        side = sum(shape) / len(shape)
        return round(max(0.5, c.official_sigma * side / SIGMA_SIDE[self.ndim]), 3)

    def objective(self, data: TrainingSet) -> PairwiseObjective:
        c = self.cfg
        return PairwiseObjective(self.build_similarity(data), self.regulariser, c.lambda_reg,
                                 c.pad_multiple, c.inter_subject)

    def check_size(self, shape) -> None:
        need = getattr(self.nets["net"], "min_side", 1)
        if min(shape) < need:
            raise InputError(f"dgir: network '{self.cfg.network}' needs at least {need} voxels per axis in "
                             f"{self.ndim}D, got {'x'.join(map(str, shape))}; set network: small for small images")

    def fit(self, data: TrainingSet, log_path: Path | None = None) -> dict:
        self.check_size(data.shape)
        torch.manual_seed(int(self.cfg.seed))   # the autoencoder of deepsim/ae_lncc trains in objective()
        summary = super().fit(data, log_path)
        c = self.cfg
        summary.update(loss=c.loss, network=c.network, backbone=c.backbone, reg_scale=c.reg_scale,
                       lam=c.lam, lambda_reg=c.lambda_reg, sigma=c.sigma, lncc_eps=c.lncc_eps,
                       parameters=sum(p.numel() for p in self.nets["net"].parameters()))
        if c.loss == "diffusion":
            summary.update(block=c.block, t=c.t, noise=c.noise)
        return summary

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        self.check_size(moving.shape[2:])
        return register_pair(self.nets["net"], moving, fixed, self.cfg.pad_multiple)
