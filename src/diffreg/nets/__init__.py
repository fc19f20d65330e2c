"""Network building blocks and registration backbones (registry ``BACKBONES``)."""
from .backbones import BACKBONES, build_backbone
from .swin import SwinEncoder
from .unet import VoxelMorphUNet

__all__ = ["BACKBONES", "build_backbone", "VoxelMorphUNet", "SwinEncoder"]
