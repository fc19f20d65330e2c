"""`diffreg report`: one self-contained HTML page with the table, figures and run summary."""
from __future__ import annotations

from pathlib import Path

from diffreg.errors import InputError
from diffreg.evaluation_config import load_label_names
from diffreg.io import RunManifest
from diffreg.report.html import ReportInputs, build_report, results_layout

NAME = "report"
HELP = ("Render the self-contained HTML report (table, qualitative figure, Dice box plot, run summary, "
        "paper sections).")


def add_arguments(parser) -> None:
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="published results folder (tables/, registrations/, preprocessed/, pipeline_info/); "
                             "the explicit options below override its parts")
    parser.add_argument("--tables", default=None, metavar="DIR",
                        help="folder written by `diffreg tabulate` (table.html, metrics_all.csv)")
    parser.add_argument("--registrations", nargs="+", default=None, metavar="DIR",
                        help="registration output directories (<method>__<pair>) or folders of them")
    parser.add_argument("--images-dir", nargs="+", default=None, metavar="DIR",
                        help="folder(s) with the preprocessed images and label maps (searched recursively)")
    parser.add_argument("--pipeline-info", default=None, metavar="DIR",
                        help="folder of Nextflow's report, timeline, trace and DAG, linked from the page")
    parser.add_argument("--pipeline-info-href", default=None, metavar="URL",
                        help="relative link prefix for the pipeline_info files (default: their path relative "
                             "to --out); use when the page is published elsewhere than it is written")
    parser.add_argument("--provenance", default=None, metavar="JSON",
                        help="provenance.json the workflow writes (command line, profile, parameters, Nextflow "
                             "version); default with --results: the newest pipeline_info/provenance*.json")
    parser.add_argument("--software-versions", default=None, metavar="YAML",
                        help="software_versions.yml the workflow writes (each process's software versions, from "
                             "its tasks' run.json); default: the one in the pipeline_info folder")
    parser.add_argument("--results-href", default=None, metavar="URL",
                        help="link prefix of the published results folder (the CSVs each number links to); "
                             "default: their paths relative to --out")
    parser.add_argument("--experiments", nargs="+", default=None, metavar="DIR",
                        help="folders written by `diffreg experiment-artifacts`, one paper section each "
                             "(default with --results: every <results>/experiments/*/ holding an index.json)")
    parser.add_argument("--label-names", default=None, metavar="JSON",
                        help="labels.json (label id -> name), listed in the run summary")
    parser.add_argument("--title", default="diffreg-nf results", help="page title")
    parser.add_argument("--template", default=None, metavar="J2",
                        help="Jinja2 template (default: reports/report.html.j2 of the project)")
    parser.add_argument("--out", required=True, metavar="HTML", help="the HTML file to write")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: the report is deterministic")


def resolve_inputs(args) -> ReportInputs:
    base = results_layout(args.results) if args.results else None
    tables = Path(args.tables) if args.tables else (base.tables if base else None)
    # no registrations: a run of papers only (their registrations are in the papers' sections)
    regs = [Path(p) for p in args.registrations] if args.registrations else (base.registrations if base else [])
    images = [Path(p) for p in args.images_dir] if args.images_dir else (base.images if base else None)
    missing = [name for name, v in (("--tables", tables), ("--images-dir", images))
               if v is None]
    if missing:
        raise InputError(f"report: give --results or {', '.join(missing)}")
    info = Path(args.pipeline_info) if args.pipeline_info else (base.pipeline_info if base else None)
    experiments = [Path(p) for p in args.experiments] if args.experiments else (base.experiments if base else [])
    return ReportInputs(tables=tables, registrations=regs, images=images, pipeline_info=info,
                        pipeline_info_href=args.pipeline_info_href,
                        label_names=load_label_names(args.label_names), experiments=experiments,
                        provenance=Path(args.provenance) if args.provenance else None,
                        software_versions=Path(args.software_versions) if args.software_versions else None,
                        results_href=args.results_href)


def run(args) -> int:
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")}, seed=args.seed)
    inputs = resolve_inputs(args)
    out = build_report(inputs, args.out, title=args.title, template=args.template)
    manifest.write(out.parent / "run.json")
    print(out)
    return 0
