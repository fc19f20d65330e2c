"""The two loss registries; kept apart from __init__ so loss modules can import them without cycles."""
from __future__ import annotations

from torch import nn

from diffreg.registry import Registry

SIMILARITIES: Registry[nn.Module] = Registry("similarity")
REGULARISERS: Registry[nn.Module] = Registry("regulariser")
