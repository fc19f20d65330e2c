"""Registration methods, composed: networks (backbone registry) x an Objective (similarity,
regulariser, extra terms) x the one Trainer, with typed settings (docs/methods.md).

Adding a method is one module here plus its line in diffreg/catalog.py, which this imports.
"""
import importlib as _importlib

from ..catalog import METHODS as _CATALOG, modules as _modules
from ..training.config import MethodConfig, TrainerConfig  # noqa: F401
from ..training.objective import Objective  # noqa: F401
from ..training.trainer import Trainer, freeze  # noqa: F401
from ..training.training_set import TrainingSet  # noqa: F401
from .base import METHODS, Method, build_method, check_config, load_method  # noqa: F401
from .objective import PairwiseObjective  # noqa: F401
from .result import RegistrationResult  # noqa: F401

for _module in _modules(_CATALOG):                 # each registers its methods (catalog.py names them)
    _importlib.import_module(f"{__name__}.{_module}")
