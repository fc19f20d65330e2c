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


# ----------------------------------------------------------------------------- import graph and sizes

MAX_LINES = 600
SIZE_REASON = "Over 600 lines:"


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> project modules it imports, from the AST of every file: module-level, in-function
    and TYPE_CHECKING imports alike, so that a deferred import cannot hide a cycle. Importing
    `a.b.c` runs `a/__init__` and `a/b/__init__` first, so those are edges too, except the
    importer's own packages (already being imported when it runs)."""
    files = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]   # `from pkg import module`
            else:
                continue
            for target in targets:
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    dep = ".".join(parts[:i])
                    if dep in files and dep != name and not name.startswith(dep + "."):
                        graph[name].add(dep)
    return graph


def package_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The same edges between the top-level subpackages and modules of `package` (diffreg.data,
    diffreg.methods, diffreg.io, ...): data -> preprocess -> data is a cycle even when no single
    module imports itself back."""
    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])
    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        if name == package:
            continue
        out.setdefault(top(name), set()).update(top(d) for d in deps if d != package and top(d) != top(name))
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def oversized(src: Path, limit: int = MAX_LINES) -> list[str]:
    """Files over `limit` lines whose module docstring gives no line starting `Over 600 lines:`."""
    out = []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) <= limit:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith(SIZE_REASON) for line in doc.splitlines()):
            out.append(f"{path.relative_to(src)}: {len(text.splitlines())} lines")
    return out


def deferred_without_reason(src: Path, package: str) -> list[str]:
    """In-function imports of project modules with no comment saying why they are deferred (on
    the line, or a comment line right above it or above the block of imports it heads)."""
    out = []
    for path in sorted((src / package).rglob("*.py")):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if not (isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == package)
                        or isinstance(node, ast.Import) and any(a.name.split(".")[0] == package for a in node.names)):
                    continue
                i = node.lineno - 1
                while i > 0 and lines[i - 1].lstrip().startswith(("from ", "import ")):
                    i -= 1      # the first import of the block
                said = "#" in lines[node.end_lineno - 1] or lines[i - 1].lstrip().startswith("#")
                if not said:
                    out.append(f"{path.relative_to(src)}:{node.lineno}")
    return sorted(set(out))


def test_no_import_cycle_between_modules():
    assert find_cycle(import_graph(ROOT / "src", "diffreg")) is None


def test_no_import_cycle_between_packages():
    graph = package_graph(import_graph(ROOT / "src", "diffreg"), "diffreg")
    assert find_cycle(graph) is None
    assert "diffreg.training" in graph["diffreg.methods"] | graph["diffreg.features"]


def test_no_file_over_600_lines_without_a_reason():
    assert oversized(ROOT / "src") == []


def test_every_deferred_project_import_says_why():
    assert deferred_without_reason(ROOT / "src", "diffreg") == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_cycle_checks_see_deferred_relative_and_package_imports(tmp_path):
    src = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import g\n",
        "pkg/b.py": "def g():\n    from pkg.a import f  # deferred: a cycle all the same\n",
        "pkg/low/__init__.py": "from . import m\n",
        "pkg/low/m.py": "from .. import a\n",
        "pkg/top/__init__.py": "",
        "pkg/top/n.py": "def h():\n    from ..low import m\n",
    })
    graph = import_graph(src, "pkg")
    assert graph["pkg.low.m"] == {"pkg.a"} and graph["pkg.low"] == {"pkg.low.m"}
    assert graph["pkg.top.n"] == {"pkg.low", "pkg.low.m"}
    assert find_cycle(graph) in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])
    assert deferred_without_reason(src, "pkg") == ["pkg/top/n.py:2"]    # b.py says why
    (src / "pkg/b.py").write_text("def g():\n    pass\n")
    assert find_cycle(import_graph(src, "pkg")) is None
    # no module imports itself back, but two packages import each other
    _write(src, {"pkg/low/__init__.py": "", "pkg/low/m.py": "def k():\n    from ..top import n\n",
                 "pkg/low/p.py": "", "pkg/top/n.py": "", "pkg/top/o.py": "from ..low import p\n"})
    graph = import_graph(src, "pkg")
    assert find_cycle(graph) is None
    assert find_cycle(package_graph(graph, "pkg")) in (["pkg.low", "pkg.top", "pkg.low"],
                                                       ["pkg.top", "pkg.low", "pkg.top"])


def test_the_size_check_wants_a_reason_past_600_lines(tmp_path):
    body = "x = 1\n" * 598
    _write(tmp_path, {"ok.py": '"""Short."""\n' + body + "y = 2\n",
                      "long.py": '"""Long."""\n' + body + "y = 2\nz = 3\n",
                      "why.py": '"""Long.\n\nOver 600 lines: one table of constants.\n"""\n' + body + "y = 2\n"})
    assert oversized(tmp_path) == ["long.py: 601 lines"]
