"""Registration methods, composed: networks (backbone registry) x an Objective (similarity,
regulariser, extra terms) x the one Trainer, with typed settings (docs/methods.md).

Adding a method is one module here plus its import line below, and its Config in diffreg/configs/
(settings importable without torch) with its line in configs.CONFIGS.
"""
from ..configs import check_config  # noqa: F401
from ..training.config import MethodConfig, TrainerConfig  # noqa: F401
from ..training.objective import Objective  # noqa: F401
from ..training.trainer import Trainer, freeze  # noqa: F401
from ..training.training_set import TrainingSet  # noqa: F401
from .base import METHODS, Method, build_method, load_method  # noqa: F401
from .objective import PairwiseObjective  # noqa: F401
from .result import RegistrationResult  # noqa: F401
from . import pairwise  # noqa: F401  (registers "voxelmorph")
from . import dgir  # noqa: F401  (registers "dgir")
from . import diffusemorph  # noqa: F401  (registers "diffusemorph")
from . import gradicon  # noqa: F401  (registers "gradicon", "unigradicon")
from . import symnet  # noqa: F401  (registers "symnet")
from . import cyclemorph  # noqa: F401  (registers "cyclemorph")
from . import vtn  # noqa: F401  (registers "vtn")
from . import fsdiffreg  # noqa: F401  (registers "fsdiffreg")
from . import m2m_reg  # noqa: F401  (registers "m2m_reg")
from . import diffusereg  # noqa: F401  (registers "diffusereg")
from . import ldm_morph  # noqa: F401  (registers "ldm_morph")
