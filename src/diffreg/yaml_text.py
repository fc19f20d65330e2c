"""YAML text parsed with libyaml's C parser where PyYAML was built with it (the PyPI wheels are):
the same safe loader and YAML 1.1 resolution, about ten times faster than the pure-Python parser,
which cost the launch 2 s for the papers' and pairings' YAMLs."""
from __future__ import annotations

import yaml

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str):
    return yaml.load(text, Loader=SAFE_LOADER)
