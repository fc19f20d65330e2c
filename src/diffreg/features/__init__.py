"""Frozen feature models for feature-space similarities (DGIR and its baselines).

- `DiffusionFeatures`: ADM U-Net block n at timestep t (DGIR's g).
- `AutoencoderFeatures` + `train_autoencoder`: an AE trained on the training images (DeepSim, AE+LNCC).
- `VGGFeatures`, `DINOFeatures`: from user-given weight files, `NeedsWeights` otherwise.
- `SliceSampler`: random slices of 3D volumes for 2D feature models.
Importing `diffreg.features.similarity` registers the similarities "diffusion", "vgg", "dino" and
"autoencoder".
"""
from .autoencoder import AutoencoderFeatures, ConvAutoencoder, train_autoencoder
from .base import FeatureModel, NeedsWeights
from .diffusion import DiffusionFeatures, linear_alphas_cumprod
from .pretrained import DINOFeatures, VGGFeatures
from .slices import SliceSampler

__all__ = ["AutoencoderFeatures", "ConvAutoencoder", "train_autoencoder", "FeatureModel",
           "NeedsWeights", "DiffusionFeatures", "linear_alphas_cumprod", "DINOFeatures",
           "VGGFeatures", "SliceSampler"]
