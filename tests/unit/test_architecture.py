"""Rules of the layout a reviewer checks: the pipeline knows no paper, modules read no params,
the loss layer does not depend on the feature layer, and the planner has no per-paper branch."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAPERS = re.compile(r"dgir|diffusemorph|diffusereg|ldm[-_]?morph|m2m", re.I)


def _nextflow_files(*parts):
    for part in parts:
        path = ROOT / part
        yield from ([path] if path.is_file() else sorted(path.rglob("*.nf")))


def test_no_paper_name_in_the_pipeline():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _nextflow_files("main.nf", "workflows", "subworkflows", "modules")
            for i, line in enumerate(p.read_text().splitlines(), 1) if PAPERS.search(line)]
    assert not hits, hits


def test_modules_read_no_params():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _nextflow_files("modules")
            for i, line in enumerate(p.read_text().splitlines(), 1) if "params." in line]
    assert not hits, hits


def test_every_module_is_used():
    text = "\n".join(p.read_text() for p in _nextflow_files("workflows", "subworkflows"))
    for module in sorted((ROOT / "modules/local").iterdir()):
        name = re.search(r"process (\w+)", (module / "main.nf").read_text()).group(1)
        assert re.search(rf"include {{ *{name}\b", text), f"process {name} is never included"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: resolve against the package of the file
                pkg = path.relative_to(ROOT / "src").parent.parts[: len(path.relative_to(ROOT / "src").parent.parts) - node.level + 1]
                base = ".".join(pkg) + (f".{base}" if base else "")
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_losses_do_not_import_features():
    for path in sorted((ROOT / "src/diffreg/losses").glob("*.py")):
        bad = {m for m in _imports(path) if m.startswith("diffreg.features")}
        assert not bad, f"{path.name} imports {bad}"


def test_planner_has_no_per_paper_branch():
    for name in ("planner.py", "experiments.py"):
        path = ROOT / "src/diffreg" / name
        hits = [i for i, line in enumerate(path.read_text().splitlines(), 1)
                if PAPERS.search(line) and not line.lstrip().startswith("#")]
        assert not hits, f"{name} lines {hits} name a paper"


def test_the_pipeline_reads_no_yaml_and_no_python_source():
    """Experiment YAMLs, samplesheets' dataset lists and registries are read by `diffreg launch`
    and `diffreg plan` alone; Groovy reads their JSON/CSV output."""
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _nextflow_files("main.nf", "workflows", "subworkflows", "modules")
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"snakeyaml|Yaml\(|/src/diffreg|\.py\b", line)]
    assert not hits, hits


def test_no_paper_or_weight_name_in_the_configs():
    """nextflow.config names no paper and no weight file (the schema's `weights` group lists them);
    no profile config names a weight file either."""
    schema = __import__("json").loads((ROOT / "nextflow_schema.json").read_text())
    weights = list(schema["$defs"]["weights"]["properties"])
    code = lambda path: "\n".join(line.split("//")[0] for line in path.read_text().splitlines())
    assert not PAPERS.search(code(ROOT / "nextflow.config"))
    for path in [ROOT / "nextflow.config", *sorted((ROOT / "conf").glob("*.config"))]:
        assert not [w for w in weights if w in code(path)], path
