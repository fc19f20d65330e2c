"""Stand-ins for modules an official checkout imports but the compared code paths never use."""
from __future__ import annotations

import sys
import types


def placeholder_module(name: str) -> None:
    """Import `name`, or install a stub whose attributes are empty classes (they serve only as
    annotations in the official code), so that the official module imports without it."""
    try:
        __import__(name)
    except ImportError:
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attr: type(attr, (), {})
        sys.modules[name] = stub
