"""The one training loop every learned method and pretraining stage runs through: the Trainer
(trainer.py), its settings (config.py), what a step computes (objective.py), the training images
(training_set.py), checkpoints (checkpoint.py) and DDP (distributed.py). It sits below both
diffreg.methods and diffreg.features, so either may use it. Nothing is imported here, so that
the settings (config.py) stay cheap to import for the planner and the stage registry."""
