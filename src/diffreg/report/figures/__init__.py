"""Figures: the report's panels as PNG bytes (`common`), and the computed figures of the papers
by name in `FIGURES` (`fn(moving, fixed, config, outdir, seed, device) -> [files written]`).

Importing this package registers every paper's figure functions; none of them imports torch
until it runs, so the planner and the report can import it cheaply.
"""
from . import dgir  # noqa: F401  registers dgir.similarity_heatmaps, dgir.correspondences
from . import m2m_reg  # noqa: F401  registers m2m_reg.training_curves
from .common import (DPI, PANEL_IN, QualitativeRow, dice_boxplot, draw_grid, field_slice, mid_slice, plt,
                     png_bytes, qualitative_figure)
from .registry import FIGURES, SETTINGS, FigureFunction, check_config, get_figure, register

__all__ = ["DPI", "PANEL_IN", "QualitativeRow", "dice_boxplot", "draw_grid", "field_slice", "mid_slice", "plt",
           "png_bytes", "qualitative_figure", "FIGURES", "SETTINGS", "FigureFunction", "check_config",
           "get_figure", "register"]
