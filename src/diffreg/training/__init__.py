"""The one training loop every learned method and pretraining stage runs through: the Trainer
(trainer.py), its settings (config.py), what a step computes (objective.py), the training images
(training_set.py), checkpoints (checkpoint.py) and DDP (distributed.py). It sits below both
diffreg.methods and diffreg.features, so either may use it."""
from .checkpoint import Checkpoint  # noqa: F401
from .config import MethodConfig, TrainerConfig  # noqa: F401
from .objective import Objective  # noqa: F401
from .trainer import Trainer, freeze  # noqa: F401
from .training_set import TrainingSet  # noqa: F401
