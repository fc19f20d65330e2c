"""DGIR: Diffusion-Guided Image Registration (Tursynbek et al., MICCAI 2025), and the loss grid
of its Table 1 on the same network.

The ICON multi-step U-Net (4 steps, 1/8 .. 1/1) is trained with Adam 1e-4 on
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

Regulariser scale: the official code sums, over axes, the mean squared forward difference of
phi - id in [0, 1] coordinates times N^2, i.e. D x (our `diffusion` regulariser, a mean over axes
in voxel units) up to (N/(N-1))^2. So lambda_reg = lambda_paper * D reproduces the paper's lambda.

Choices the paper leaves open (the official code's behaviour is one option each):
- sigma: the paper's 4 (2D) / 5 (3D) refer to 256 x 256 images (64 x 64 feature maps) and
  160 x 192 x 224 volumes; by default sigma is scaled to the image size so windows cover the
  same fraction of the image (`sigma` given explicitly: used as is).
- noise: "shared" (one noise image per pair, so aligned images have identical features, as the
  paper states) or "independent" (the official q_sample with fresh noise per image).
- lncc_border: "zeros" (the official Gaussian blur pads with zeros) or "normalized".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import InputError
from ..features import similarity as feature_similarities  # registers the feature similarities
from ..features.autoencoder import train_autoencoder
from ..features.base import NeedsWeights
from ..losses import build_regulariser, build_similarity
from ..nets import build_backbone
from .base import METHODS, Method
from .config import TrainerConfig
from .objective import PairwiseObjective
from .pairs import register_pair
from .result import RegistrationResult
from .training_set import TrainingSet

LOSSES = ("diffusion", "lncc", "mse", "mind", "ngf", "deepsim", "ae_lncc", "vgg_lncc", "dino_lncc")

# paper Sec. 3.2, 4, 5 and the official configs (reference-facts §4): per dimensionality
PAPER = {
    2: dict(block=29, t=50, paper_sigma=4.0, lambda_paper=1.0, batch_size=4),
    3: dict(block=11, t=50, paper_sigma=5.0, lambda_paper=0.5, batch_size=2),
}
# image side the paper's sigma refers to: 256 x 256 knees; 3D slices of 160 x 192 x 224 (mean 192)
PAPER_SIDE = {2: 256.0, 3: 192.0}


@dataclass
class DGIRConfig(TrainerConfig):
    loss: str = "diffusion"
    backbone: str = "icon"
    backbone_kwargs: dict = field(default_factory=lambda: {"scales": [8, 4, 2, 1]})
    regulariser: str = "diffusion"
    regulariser_kwargs: dict = field(default_factory=dict)
    lambda_reg: float | None = None    # None: lambda_paper x D (module docstring)
    pad_multiple: int = 1
    inter_subject: bool = True
    # the paper's per-dimension values (PAPER; these field defaults are the 2D ones)
    block: int = 29
    t: int = 50
    paper_sigma: float = 4.0
    lambda_paper: float = 1.0
    # feature models
    feature_checkpoint: str | None = None  # ADM weights: official 256x256_diffusion_uncond.pt or the adm_natural_images stage's
    noise: str = "shared"                  # "independent": the official code's fresh noise per image
    slices: int = 4
    sigma: float | None = None             # LNCC window sigma; None: paper_sigma scaled to the image size
    lncc_border: str = "zeros"             # the official Gaussian blur pads the feature maps with zeros
    vgg_weights: str | None = None
    vgg_layer: str = "relu3_3"
    dino_weights: str | None = None
    ae_iterations: int = 500
    ae_channels: list = field(default_factory=lambda: [16, 32, 64])
    ae_level: int = 1

    # `diffreg train --similarity X` picks DGIR's loss X (an error when X is no DGIR loss)
    FLAG_KEYS = {"similarity": "loss"}

    @classmethod
    def ndim_defaults(cls, ndim: int) -> dict:
        if ndim not in PAPER:
            raise InputError(f"DGIR registers 2D or 3D images, got {ndim} spatial axes")
        return dict(PAPER[ndim])

    def resolve(self, ndim: int, given: set[str]) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown DGIR loss '{self.loss}' (known: {', '.join(LOSSES)})")
        if self.lambda_reg is None:
            self.lambda_reg = self.lambda_paper * ndim


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
        lncc = feature_similarities.lncc_window(c.sigma, c.lncc_border)
        if loss == "diffusion":
            if not c.feature_checkpoint:
                raise InputError("dgir: loss 'diffusion' needs feature_checkpoint (an ADM checkpoint; "
                                 "`diffreg pretrain --kind adm_natural_images` makes the offline one)")
            if not Path(c.feature_checkpoint).exists():
                raise InputError(f"{c.feature_checkpoint}: diffusion checkpoint not found")
            sim = build_similarity("diffusion", checkpoint=c.feature_checkpoint, block=c.block,
                                   t=c.t, sigma=c.sigma, noise=c.noise, slices=c.slices,
                                   border=c.lncc_border)
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
                                   border=c.lncc_border, **extra)
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
                                       sigma=c.sigma, slices=c.slices, border=c.lncc_border)
        return sim.to(self.device)

    def scaled_sigma(self, shape) -> float:
        """The paper's sigma for an image of `shape`: windows keep the same fraction of the image
        (and of its feature maps) as in the paper, so small toy images get small windows."""
        c = self.cfg
        if shape is None:
            return float(c.paper_sigma)
        side = sum(shape) / len(shape)
        return round(max(0.5, c.paper_sigma * side / PAPER_SIDE[self.ndim]), 3)

    def objective(self, data: TrainingSet) -> PairwiseObjective:
        c = self.cfg
        return PairwiseObjective(self.build_similarity(data), self.regulariser, c.lambda_reg,
                                 c.pad_multiple, c.inter_subject)

    def fit(self, data: TrainingSet, log_path: Path | None = None) -> dict:
        torch.manual_seed(int(self.cfg.seed))   # the autoencoder of deepsim/ae_lncc trains in objective()
        summary = super().fit(data, log_path)
        c = self.cfg
        summary.update(loss=c.loss, lambda_reg=c.lambda_reg, sigma=c.sigma)
        if c.loss == "diffusion":
            summary.update(block=c.block, t=c.t, noise=c.noise)
        return summary

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        return register_pair(self.nets["net"], moving, fixed, self.cfg.pad_multiple)
