"""Dependencies of a run on files it does not make itself: a pretraining stage's output or a
file the user gives (official weights). The plan writes a dependency into a config as
``{"stage": ID}`` or ``{"param": NAME}``; the task that stages the file passes ``--dep KEY=PATH``
and `apply_deps` puts the path in its place.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InputError

KINDS = ("stage", "param")


def is_dependency(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS


def parse_deps(items: list[str] | None) -> dict[str, str]:
    """`--dep KEY=PATH` arguments -> {KEY: PATH}; every path must exist."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise InputError(f"--dep {item}: expected KEY=PATH")
        if not Path(path).exists():
            raise InputError(f"--dep {item}: file not found: {path}")
        out[key] = path
    return out


def apply_deps(config: dict, deps: dict[str, str]) -> dict:
    """A copy of `config` with each dependency replaced by its staged path. A dependency left
    without a file, or a file for a key the config does not declare, is an error."""
    out = dict(config)
    for key, path in deps.items():
        if key not in out or not is_dependency(out[key]):
            raise InputError(f"--dep {key}: the config declares no dependency '{key}'")
        out[key] = path
    missing = sorted(k for k, v in out.items() if is_dependency(v))
    if missing:
        raise InputError(f"config needs file(s) for {', '.join(missing)}: give them with --dep KEY=PATH")
    return out


def format_needs(needs: dict[str, tuple[str, str]]) -> str:
    """{KEY: (kind, ref)} -> 'KEY=kind:ref;...' (the plan's `needs` column)."""
    return ";".join(f"{k}={kind}:{ref}" for k, (kind, ref) in sorted(needs.items()))


def parse_needs(text: str) -> dict[str, tuple[str, str]]:
    out = {}
    for item in filter(None, (text or "").split(";")):
        key, _, ref = item.partition("=")
        kind, _, name = ref.partition(":")
        if kind not in KINDS or not name:
            raise InputError(f"needs '{item}': expected KEY=stage:ID or KEY=param:NAME")
        out[key] = (kind, name)
    return out
