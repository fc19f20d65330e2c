"""Natural photographs that ship inside installed PyPI packages: the offline training set of the
default diffusion feature model. Read from the packages' own folders (no download helpers are
called). Medical or microscopy images in those folders (retina, cells, IHC, phantoms) are never
listed, so the feature model never sees the domain it is used on (DGIR's point)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from diffreg.errors import InputError

# name -> (package, path inside the package)
NATURAL_RGB = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
# natural grayscale photographs, optional (repeated to RGB)
NATURAL_GRAY = {
    "camera": ("skimage", "data/camera.png"),
    "coins": ("skimage", "data/coins.png"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "brick": ("skimage", "data/brick.png"),
    "moon": ("skimage", "data/moon.png"),
}
DEFAULT_IMAGES = tuple(NATURAL_RGB)


def image_path(name: str) -> Path:
    table = {**NATURAL_RGB, **NATURAL_GRAY}
    if name not in table:
        raise InputError(f"{name}: not a known natural image (known: {', '.join(sorted(table))})")
    package, rel = table[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"{name}: package {package} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.exists():
        raise InputError(f"{path}: missing from the installed {package}")
    return path


def load_natural_images(names=DEFAULT_IMAGES) -> dict[str, np.ndarray]:
    """name -> float32 (3, H, W) in [0, 1]."""
    from PIL import Image
    out = {}
    for name in names:
        with Image.open(image_path(name)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        out[name] = np.ascontiguousarray(arr.transpose(2, 0, 1))
    return out
