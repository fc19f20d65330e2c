"""Tiny widths of the large backbones, for the short profiles on CPU (ours, no paper's).

A method's `width: small` builds its backbone with these keyword arguments under its own
`backbone_kwargs` (which win), so that a short profile can shrink every network of a paper's
table with one setting, whatever the backbone of each row. Keys are backbone names as the methods
name them; "gradicon" is the ICON chain of tallUNet2 steps (backbone `dgir_official`).
"""
from __future__ import annotations

from ..errors import InputError

SMALL = {"gradicon": {"down": [2, 4, 8, 8, 12, 12], "up": [4, 8, 8, 12, 12]},
         "transmorph": {"embed_dim": 12, "depths": [1, 1, 1, 1], "heads": [1, 1, 1, 1], "window": 2,
                        "head_channels": 4},
         "corrmlp": {"enc_channels": 2, "dec_channels": 4, "checkpoint": False}}
WIDTHS = ("paper", "small")


def width_kwargs(backbone: str, width: str, method: str) -> dict:
    """The backbone keyword arguments of `width` ({} for "paper")."""
    if width not in WIDTHS:
        raise InputError(f"{method}: width = {width!r}: one of {', '.join(WIDTHS)}")
    if width == "paper":
        return {}
    if backbone not in SMALL:
        raise InputError(f"{method}: width small is defined for {', '.join(sorted(SMALL))}, not {backbone!r}")
    return dict(SMALL[backbone])
