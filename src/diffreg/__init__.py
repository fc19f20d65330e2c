"""diffreg: diffusion-model based deformable image registration, reproduced."""
__version__ = "0.1.0"
