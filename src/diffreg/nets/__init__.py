"""Network building blocks and registration backbones (registry ``BACKBONES``)."""
from .backbones import BACKBONES, build_backbone
from .unet import VoxelMorphUNet
from .swin import SwinEncoder

__all__ = ["BACKBONES", "build_backbone", "VoxelMorphUNet", "SwinEncoder"]
