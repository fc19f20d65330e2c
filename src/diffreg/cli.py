"""`diffreg <subcommand>`: the one entry point every Nextflow process calls.

Subcommands live in `diffreg.commands.*` and are discovered at start-up. Input errors are
printed as one line (`diffreg: error: ...`) with exit code 2, never as a bare stack trace.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from . import __version__, commands
from .errors import InputError

SCHEMA = Path(__file__).resolve().parents[2] / "nextflow_schema.json"


def pipeline_params_help() -> str:
    """The pipeline parameters from nextflow_schema.json, for `diffreg --help`."""
    if not SCHEMA.exists():
        return ""
    schema = json.loads(SCHEMA.read_text())
    lines = ["pipeline parameters (nextflow run main.nf --<name> <value>):"]
    for group in schema.get("$defs", schema.get("definitions", {})).values():
        lines.append(f"  {group.get('title', '')}:")
        for name, spec in group.get("properties", {}).items():
            default = spec.get("default")
            dflt = f" [default: {default}]" if default not in (None, "") else ""
            lines.append(f"    --{name:<22} {spec.get('description', '')}{dflt}")
    return "\n".join(lines)


def _command_modules(only: str | None = None):
    """Command modules by name (module toy_data -> command toy-data). With `only`, import just
    that one: the others pull in torch and friends, which costs seconds per task."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        name = info.name.replace("_", "-")
        if only is None or name == only:
            mod = importlib.import_module(f"{commands.__name__}.{info.name}")
            if hasattr(mod, "run"):
                yield mod


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffreg",
        description="Diffusion-model based deformable registration: methods, baselines, evaluation.",
        epilog=pipeline_params_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"diffreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for mod in _command_modules(only):
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:  # cheap: versions.yml of every task calls it
        print(f"diffreg {__version__}")
        return 0
    first = next((a for a in argv if not a.startswith("-")), None)
    known = {m.name.replace("_", "-") for m in pkgutil.iter_modules(commands.__path__)}
    parser = build_parser(first if first in known else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return args._run(args) or 0
    except InputError as exc:
        print(f"diffreg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
