"""The settings of DGIR (`dgir`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig

LOSSES = ("diffusion", "lncc", "mse", "mind", "ngf", "deepsim", "ae_lncc", "vgg_lncc", "dino_lncc")

# per dimensionality: block (paper Sec. 4, 5 = official), batch size and sigma (official configs;
# the paper gives neither)
DEFAULTS = {
    2: dict(block=29, official_sigma=4.0, batch_size=4),
    3: dict(block=11, official_sigma=5.0, batch_size=2),
}

# the settings where paper and official code differ: value per name and dimensionality
NAMED = {
    "lam": {"paper": {2: 1.0, 3: 1.0}, "official": {2: 1.0, 3: 0.5}},
    "t": {"paper": {2: 50, 3: 50}, "official": {2: 60, 3: 50}},
}

NETWORKS = {
    "official": ("dgir_official", {"levels": 3}),
    "small": ("icon", {"scales": [8, 4, 2, 1]}),
}

REG_SCALES = {"official": "diffusion_icon", "voxel": "diffusion"}

NETWORK_TEXT = {"official": "official (the official tallUNet2 ICON chain)",
                "small": "small (diffreg's ICON chain of small U-Nets; test profiles)"}


@dataclass
class DGIRConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("network",)   # shown beside the report's rows
    loss: str = "diffusion"
    network: str = "official"          # "official": tallUNet2 ICON chain; "small": diffreg's ICON net
    backbone: str | None = None        # None: the network's (NETWORKS); kwargs merge over its own
    backbone_kwargs: dict = field(default_factory=dict)
    reg_scale: str = "official"        # "official": diffusion_icon, lambda_reg = lam; "voxel": lam x D
    regulariser: str | None = None     # None: REG_SCALES[reg_scale]
    regulariser_kwargs: dict = field(default_factory=dict)
    lam: float | str = "paper"         # lambda of Eq. 4: "paper" (1), "official" (1 / 0.5 in 3D), or a number
    lambda_reg: float | None = None    # the regulariser's weight; None: from lam and reg_scale (methods/dgir.py's docstring)
    pad_multiple: int = 1
    inter_subject: bool = True
    # per-dimension values (DEFAULTS; these field defaults are the 2D ones)
    block: int = 29
    t: int | str = "paper"             # "paper" (50), "official" (60 in 2D, 50 in 3D), or a number
    official_sigma: float = 4.0
    lncc_eps: str = "official"         # "official": relu(var) + 1e-6 (features) / 1e-5 (pixels); "clamp"
    # feature models
    feature_checkpoint: str | None = None  # ADM weights: official 256x256_diffusion_uncond.pt or the adm_natural_images stage's
    noise: str = "shared"                  # "independent": the official code's fresh noise per image
    slices: int = 4
    sigma: float | str | None = None       # LNCC sigma; None: official_sigma scaled to the image size; "official": as is
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
        if ndim not in DEFAULTS:
            raise InputError(f"DGIR registers 2D or 3D images, got {ndim} spatial axes")
        return dict(DEFAULTS[ndim])

    def describe(self, key: str) -> str:
        return NETWORK_TEXT.get(self.network, self.network) if key == "network" else str(getattr(self, key))

    def resolve(self, ndim: int, given: set[str]) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown DGIR loss '{self.loss}' (known: {', '.join(LOSSES)})")
        for key, names in NAMED.items():
            value = getattr(self, key)
            if isinstance(value, str):
                if value not in names:
                    raise InputError(f"dgir: {key} = {value!r}: give a number or one of {', '.join(names)}")
                setattr(self, key, names[value][ndim])
        self.t = int(self.t)
        self.lam = float(self.lam)
        for key, known in (("network", NETWORKS), ("reg_scale", REG_SCALES), ("lncc_eps", ("official", "clamp"))):
            if getattr(self, key) not in known:
                raise InputError(f"dgir: {key} = {getattr(self, key)!r}: one of {', '.join(known)}")
        if isinstance(self.sigma, str):
            if self.sigma != "official":
                raise InputError(f"dgir: sigma = {self.sigma!r}: give a number, null or 'official'")
            self.sigma = float(self.official_sigma)
        if self.backbone is None:
            name, kwargs = NETWORKS[self.network]
            self.backbone, self.backbone_kwargs = name, {**kwargs, **self.backbone_kwargs}
        if self.regulariser is None:
            self.regulariser = REG_SCALES[self.reg_scale]
        if self.lambda_reg is None:
            self.lambda_reg = self.lam if self.reg_scale == "official" else self.lam * ndim
