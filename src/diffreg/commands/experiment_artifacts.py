"""`diffreg experiment-artifacts`: a paper's tables, figures and claim checks from our runs."""
from __future__ import annotations

from pathlib import Path

from diffreg.evaluation_config import load_label_names
from diffreg.io import RunManifest
from diffreg.report.claim_checks import claim_line
from diffreg.report.experiment import Inputs, build

NAME = "experiment-artifacts"
HELP = "Fill in an experiment YAML's tables and figures from our runs, beside the paper's numbers, and check its claims."


def add_arguments(parser) -> None:
    parser.add_argument("--experiment", required=True, metavar="YAML",
                        help="experiment YAML (artifacts: kind, title, rows = the paper's numbers, claim)")
    parser.add_argument("--name", default=None, metavar="EXP",
                        help="the experiment's name in the plan (uses.csv's experiment column; default: the YAML's stem)")
    parser.add_argument("--uses", "--plan", dest="uses", required=True, metavar="CSV",
                        help="uses.csv of `diffreg plan` (experiment,artifact,row,label,status,note,param,value)")
    parser.add_argument("--metrics", nargs="+", default=[], metavar="CSV",
                        help="long metrics CSVs of `diffreg evaluate` (method column = the registration label)")
    parser.add_argument("--registrations", nargs="+", default=[], metavar="DIR",
                        help="registration output directories or folders of them (qualitative figures)")
    parser.add_argument("--images-dir", nargs="+", default=[], metavar="DIR",
                        help="folder(s) with the images and label maps the registrations name")
    parser.add_argument("--images-datasets", default=None, metavar="TSV",
                        help="lines '<subfolder of an images dir>\t<dataset>': which dataset each staged "
                             "image belongs to (two datasets may hold a subject of the same name)")
    parser.add_argument("--figures", nargs="+", default=[], metavar="DIR",
                        help="output folders of `diffreg figure`, each named by its figure id")
    parser.add_argument("--figures-csv", default=None, metavar="CSV",
                        help="figures.csv of `diffreg plan` (which figure id an artifact drew)")
    parser.add_argument("--label-names", default=None, metavar="JSON",
                        help="labels.json (label id -> name), named in the table captions")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for <artifact>.{csv,md,html,png}, claims.json, index.json and run.json")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: the artifacts are deterministic")


def run(args) -> int:
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")}, seed=args.seed)
    inp = Inputs(experiment=Path(args.experiment), uses=Path(args.uses), name=args.name,
                 metrics=[Path(p) for p in args.metrics], registrations=[Path(p) for p in args.registrations],
                 images=[Path(p) for p in args.images_dir], figures=[Path(p) for p in args.figures],
                 images_datasets=Path(args.images_datasets) if args.images_datasets else None,
                 figures_csv=Path(args.figures_csv) if args.figures_csv else None,
                 label_names=load_label_names(args.label_names))
    out = Path(args.out)
    index = build(inp, out)
    claims = [c for s in index["sections"] for c in s["claims"]]
    manifest.update(experiment=index["experiment"], artifacts=len(index["sections"]),
                    claims_hold=sum(c["holds"] is True for c in claims),
                    claims_fail=sum(c["holds"] is False for c in claims),
                    claims_untested=sum(c["holds"] is None for c in claims))
    manifest.write(out / "run.json")
    for s in index["sections"]:
        for c in s["claims"]:
            print(f"{s['artifact']}: {claim_line(c)}")
    print(out / "index.json")
    return 0
