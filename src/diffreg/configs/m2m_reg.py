"""The settings of M2M-Reg (`m2m_reg`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from ..training.config import TrainerConfig

# the order of a path's maps (methods.icon_maps.compose_maps): ICON's, or the official code's
COMPOSITIONS = ("icon", "reversed")
REGULARISERS = ("auto", "gradicon", "map_gradient", "diffusion")
SUBJECT_DRAWS = ("distinct", "repeat")


@dataclass
class M2MRegConfig(TrainerConfig):
    backbone: str = "gradicon"            # gradicon (the official tallUNet2 chain) or a backbone name
    backbone_kwargs: dict = field(default_factory=dict)
    width: str = "paper"                  # "small": nets.small's widths under backbone_kwargs (short profiles)
    levels: int = 2                       # GradICON chain: the code's make_network (2 downsampled levels)
    lambda_reg: float = 0.5               # paper Sec. 3 (GradICON; TransMorph / CorrMLP: 0.01)
    lambda_gcc: float = 0.1               # paper Sec. 3 (GradICON; TransMorph / CorrMLP: 1)
    regulariser: str = "auto"             # gradicon for the chain, map_gradient otherwise
    sigma: float = 5.0                    # ICON's LNCC(sigma=5), the code's similarity
    composition: str = "icon"             # "reversed": the official code's order
    prealigned_pairs: int = 0             # semi-supervised: k pre-aligned bridge subjects
    prealigned_fraction: float = 0.0      # ... or this share of the training subjects
    swap_modalities: bool = True          # the code draws which modality is A per sample
    subject_draw: str = "distinct"        # "repeat": subjects may repeat when too few (tiny stand-ins)
    pad_multiple: int = 32                # voxel backbones: input padding (TransMorph 1/32)
    lr: float = 5e-5                      # paper Sec. 3
    batch_size: int = 8                   # paper Sec. 3 (GradICON; TransMorph / CorrMLP: 2)

    def resolve(self, ndim: int, given: set[str]) -> None:
        from ..nets.small import width_kwargs  # deferred: diffreg.nets imports torch

        if self.composition not in COMPOSITIONS:
            raise InputError(f"m2m_reg: composition = {self.composition!r}: one of {', '.join(COMPOSITIONS)}")
        if self.regulariser not in REGULARISERS:
            raise InputError(f"m2m_reg: regulariser = {self.regulariser!r}: one of {', '.join(REGULARISERS)}")
        width_kwargs(self.backbone, self.width, "m2m_reg")     # an unknown width fails here
        if self.subject_draw not in SUBJECT_DRAWS:
            raise InputError(f"m2m_reg: subject_draw = {self.subject_draw!r}: one of {', '.join(SUBJECT_DRAWS)}")
        if self.regulariser == "auto":
            self.regulariser = "gradicon" if self.backbone == "gradicon" else "map_gradient"
        if self.prealigned_pairs < 0 or not 0.0 <= self.prealigned_fraction <= 1.0:
            raise InputError("m2m_reg: prealigned_pairs >= 0 and prealigned_fraction in [0, 1]")
        if self.prealigned_pairs and self.prealigned_fraction:
            raise InputError("m2m_reg: give prealigned_pairs or prealigned_fraction, not both")

    def prealigned_count(self, n_subjects: int) -> int:
        """k of the semi-supervised scheme; a positive share keeps at least one pair (the code's
        int(share * n) would make 0.01 of fewer than 100 subjects the unsupervised scheme)."""
        if self.prealigned_pairs:
            if self.prealigned_pairs > n_subjects:
                raise InputError(f"m2m_reg: prealigned_pairs {self.prealigned_pairs} > {n_subjects} training subjects")
            return self.prealigned_pairs
        if self.prealigned_fraction:
            return max(1, int(self.prealigned_fraction * n_subjects))
        return 0
