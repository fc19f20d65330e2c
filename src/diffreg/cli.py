"""`diffreg <subcommand>`: the one entry point every Nextflow process calls.

Subcommands live in `diffreg.commands.*` and are discovered at start-up. Input errors are
printed as one line (`diffreg: error: ...`) with exit code 2, never as a bare stack trace.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
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


def load_plugins(spec: str | None = None) -> list[str]:
    """Import the plugins named in DIFFREG_PLUGINS (comma-separated Python files or module names)
    and the installed packages' `diffreg.plugins` entry points: each may register methods,
    figure functions or pretraining stages, so a new paper needs no edit of the package."""
    import importlib.util
    from importlib.metadata import entry_points

    spec = os.environ.get("DIFFREG_PLUGINS", "") if spec is None else spec
    loaded = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if item.endswith(".py"):
            path = Path(item)
            if not path.is_file():
                raise InputError(f"DIFFREG_PLUGINS: plugin file not found: {item}")
            mod_spec = importlib.util.spec_from_file_location(f"diffreg_plugin_{path.stem}", path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            importlib.import_module(item)
        loaded.append(item)
    for ep in entry_points(group="diffreg.plugins"):
        ep.load()
        loaded.append(ep.name)
    return loaded


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
    if argv[:1] == ["--version"]:  # cheap: before plugins load or any command is imported
        print(f"diffreg {__version__}")
        return 0
    first = next((a for a in argv if not a.startswith("-")), None)
    known = {m.name.replace("_", "-") for m in pkgutil.iter_modules(commands.__path__)}
    try:
        load_plugins()
    except InputError as exc:
        print(f"diffreg: error: {exc}", file=sys.stderr)
        return 2
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
