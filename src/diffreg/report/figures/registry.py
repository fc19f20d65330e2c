"""Computed figures by name: ``fn(moving, fixed, config, outdir, seed, device) -> [files written]``.

Each function declares its settings with their defaults when it registers, so a plan can check a
figure's settings (`check_config`) without running it, and the function merges its config with
the same declaration before it runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from diffreg.registry import SettingsRegistry

FigureFunction = Callable[[Path, Path, dict, Path, int, str], list[Path]]

FIGURES: SettingsRegistry = SettingsRegistry("figure function")
SETTINGS = FIGURES.settings      # name -> {setting: default}
register = FIGURES.declare       # @register(name, settings)
get_figure = FIGURES.lookup
check_config = FIGURES.check_config
