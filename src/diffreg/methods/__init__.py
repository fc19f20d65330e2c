"""Registration methods behind one interface (`Method`: fit / register / save / load).

Adding a method is one module here plus its import line below.
"""
from .base import METHODS, Method, TrainingSet, build_method, load_method  # noqa: F401
from . import pairwise  # noqa: F401  (registers "voxelmorph")
from . import dgir  # noqa: F401  (registers "dgir")
