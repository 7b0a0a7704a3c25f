"""The package's boundaries, checked on the source: a model's classes and quirks stay in its folder, heavy
libraries stay where they belong, every import follows the direction table of docs/architecture.md and no
import cycle joins two of its rows. Greps and `ast`, so a boundary broken by a new line fails here, not in review."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "i2v"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
I2VGENXL = SRC / "models" / "i2vgenxl"

#: What only the I2VGen-XL folder may name: its classes, its conditioning, its text encoder's budget, its files.
I2VGENXL_QUIRKS = re.compile(
    r"I2VGenXL|I2VGen-XL|i2vgen|clip_skip|target_fps|\b77\b|variant=\"fp16\"|\bCLIP|\bUNet\b|\bunet\b|\b(ddim|DDIM|dpmpp)\b"
)
WAN = SRC / "models" / "wan22"
#: What only the Wan 2.2 folder may name: its classes, its text encoder, its timestep and scheduler settings.
WAN_QUIRKS = re.compile(r"\bWan[A-Z]\w*|AutoencoderKLWan|UMT5|\bT5\b|expand_timesteps|flow_shift|\bunipc\b|UniPC|wan2\.2|Wan2\.2")
#: The registry names the models it offers: the default model's hub id and the plugins' modules.
ALLOWED = {
    ("models/registry.py", 'DEFAULT_MODEL = "ali-vilab/i2vgen-xl"'),
    ("models/registry.py", 'PLUGIN_MODULES = ("i2v.models.i2vgenxl", "i2v.models.wan22", "i2v.models.camera_preview")'),
}
#: Heavy or edge libraries -> the only places that may import them.
IMPORTS = {
    "diffusers": ("models/",),
    "transformers": ("models/",),
    "gradio": ("web/",),
    "fastapi": ("web/",),
    "starlette": ("web/",),
}


def sources(outside: Path | None = None) -> list[Path]:
    return [path for path in sorted(SRC.rglob("*.py")) if outside is None or outside not in path.parents]


def test_the_layout_is_the_one_this_test_checks():
    """The folders the checks below rely on exist, so a move cannot make them pass by finding nothing."""
    assert (I2VGENXL / "sampler.py").is_file() and (I2VGENXL / "spec.py").is_file()
    assert (WAN / "backend.py").is_file() and (WAN / "spec.py").is_file()
    assert len(sources(I2VGENXL)) > 40, "too few files outside the model folder: wrong SRC?"


@pytest.mark.parametrize(("folder", "quirks"), [(I2VGENXL, I2VGENXL_QUIRKS), (WAN, WAN_QUIRKS)], ids=["i2vgenxl", "wan22"])
def test_nothing_outside_a_model_folder_names_its_classes_or_quirks(folder, quirks):
    found = []
    for path in sources(folder):
        relative = path.relative_to(SRC).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if quirks.search(line) and (relative, line.strip()) not in ALLOWED:
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, f"{folder.name} leaks out of its folder:\n" + "\n".join(found)


def test_the_grep_catches_a_leak():
    """The patterns themselves find each quirk (a pattern that matched nothing would pass the test above)."""
    for leak in ("from i2v.models.i2vgenxl.sampler import I2VGenXLSampler", "clip_skip=1", "target_fps=16",
                 "CLIP reads 77 tokens", 'variant="fp16"', "scheduler='ddim'", "the UNet step"):
        assert I2VGENXL_QUIRKS.search(leak), leak
    for leak in ("WanImageToVideoPipeline(", "UMT5EncoderModel", "expand_timesteps=True", "flow_shift=5.0",
                 "scheduler='unipc'", "Wan2.2-TI2V-5B-Diffusers", "enable WanTransformer3DModel caching"):
        assert WAN_QUIRKS.search(leak), leak


@pytest.mark.parametrize("library", sorted(IMPORTS))
def test_heavy_libraries_are_imported_only_where_they_belong(library):
    pattern = re.compile(rf"^\s*(from|import)\s+{library}\b", re.MULTILINE)
    offenders = [
        path.relative_to(SRC).as_posix()
        for path in sources()
        if pattern.search(path.read_text(encoding="utf-8"))
        and not path.relative_to(SRC).as_posix().startswith(IMPORTS[library])
    ]
    assert not offenders, f"{library} imported outside {IMPORTS[library]}: {offenders}"


def test_only_the_registry_imports_a_model_folder():
    """Everything else reaches a model through the registry (its spec, its backend, its cost model)."""
    pattern = re.compile(r"i2v\.models\.(i2vgenxl|wan22|camera_preview)\b")
    offenders = []
    for path in sources():
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(("models/i2vgenxl/", "models/wan22/", "models/camera_preview/")) or relative == "models/registry.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "a model folder reached around the registry:\n" + "\n".join(offenders)


# -- the direction table -----------------------------------------------------------------------------------------
# The table lives in docs/architecture.md ("Direction of dependencies"), and only there: the test reads it, so the
# page and the check cannot drift. To change a dependency, change that block.


@dataclass(frozen=True)
class Import:
    """One `import` of an i2v module: where it is, what it reaches, and whether it runs when the module is imported."""

    source: str
    target: str
    line: int
    local: bool  # inside a function: runs only when called
    typing: bool  # under `if TYPE_CHECKING:`: never runs

    def __str__(self) -> str:
        how = " (inside a function)" if self.local else " (TYPE_CHECKING)" if self.typing else ""
        return f"{self.source}:{self.line} imports {self.target}{how}"


@dataclass(frozen=True)
class Entry:
    name: str  # dotted, under i2v ("models.registry"), or "anything"
    mark: str  # "": any import; "*": inside a function or for type checking only; "?": for type checking only
    upward: bool  # "!": a row above, allowed by name


@dataclass
class Row:
    members: tuple[str, ...]  # "cli.py", "web/", "models/<name>/", "__init__.py"
    entries: list[Entry]


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at `root` (a package is its __init__)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(root: Path) -> list[Import]:
    """Every import of a module of the package at `root`, each resolved to the deepest module it names: `from
    i2v.web import api` reaches i2v.web.api, `from i2v.web import create_app` reaches i2v.web (its __init__)."""
    modules = module_names(root)
    found: list[Import] = []

    def deepest(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for source, path in modules.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]

        def visit(node: ast.AST, local: bool, typing: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    visit(child, True, typing)
                elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    for statement in child.body:
                        visit(ast.Module(body=[statement], type_ignores=[]), local, True)
                    for statement in child.orelse:
                        visit(ast.Module(body=[statement], type_ignores=[]), local, typing)
                elif isinstance(child, ast.Import):
                    for alias in child.names:
                        if alias.name.partition(".")[0] == root.name:
                            found.append(Import(source, deepest(alias.name), child.lineno, local, typing))
                elif isinstance(child, ast.ImportFrom):
                    if child.level:  # from . import x, from ..jobs import y
                        base = package.split(".")[: len(package.split(".")) - child.level + 1]
                        module = ".".join([*base, *([child.module] if child.module else [])])
                    else:
                        module = child.module or ""
                    if module.partition(".")[0] != root.name:
                        continue
                    for alias in child.names:
                        named = f"{module}.{alias.name}"
                        found.append(Import(source, deepest(named if named in modules else module), child.lineno, local, typing))
                else:
                    visit(child, local, typing)

        visit(ast.parse(path.read_text(encoding="utf-8")), False, False)
    return [item for item in found if item.target is not None and item.target != item.source]


def direction_table(text: str) -> list[Row]:
    """The rows of the code block under "Direction of dependencies", top first. A line `members | entries`
    starts a row; a line with nothing before the `|` continues the row above."""
    section = text.split("### Direction of dependencies", 1)[1]
    block = section.split("```", 2)[1]
    rows: list[Row] = []
    for line in block.strip("\n").splitlines():
        members, _, entries = line.partition("|")
        if members.strip():
            rows.append(Row(tuple(members.split()), []))
        for word in entries.split():
            mark = word[-1] if word[-1] in "*?" else ""
            rows[-1].entries.append(Entry(word.lstrip("!").rstrip("*?"), mark, word.startswith("!")))
    return rows


def row_of(module: str, rows: list[Row], package: str = "i2v") -> int | None:
    """The index of the row `module` belongs to: its own file, else the innermost folder listed."""
    relative = module.removeprefix(package).lstrip(".").split(".") if module != package else []
    best: tuple[int, int] | None = None
    for index, row in enumerate(rows):
        for member in row.members:
            if member == "__init__.py":
                match, depth = not relative, 1
            elif member.endswith(".py"):
                match, depth = relative == member.removesuffix(".py").split("/"), 99
            else:
                folder = member.strip("/").split("/")
                depth = len(folder)
                match = len(relative) >= depth and all(
                    part == want or (want == "<name>" and _is_package_folder(package, relative[: position + 1]))
                    for position, (part, want) in enumerate(zip(relative, folder))
                )
            if match and (best is None or depth > best[0]):
                best = (depth, index)
    return best[1] if best else None


def _is_package_folder(package: str, parts: list[str]) -> bool:
    return (SRC.parent / package / Path(*parts) / "__init__.py").is_file()


def entry_for(target: str, row: Row, package: str = "i2v") -> Entry | None:
    """The longest entry of `row` that names `target` or a package above it."""
    relative = target.removeprefix(package).lstrip(".")
    matches = [entry for entry in row.entries if relative == entry.name or relative.startswith(entry.name + ".")]
    return max(matches, key=lambda entry: len(entry.name), default=None)


def violations(found: list[Import], rows: list[Row], package: str = "i2v") -> list[str]:
    """Each import the table does not allow, as one line naming the file, the line and the row's rule."""
    problems = []
    for item in found:
        source, target = row_of(item.source, rows, package), row_of(item.target, rows, package)
        if source is None or target is None or source == target:
            continue  # a module in no row is reported by its own test; inside a row anything goes
        row = rows[source]
        entry = entry_for(item.target, row, package)
        if entry is None and any(e.name == "anything" for e in row.entries) and target > source:
            continue
        if entry is None:
            problems.append(f"{item}: not in the row of {' '.join(row.members)}")
        elif entry.mark == "*" and not (item.local or item.typing):
            problems.append(f"{item}: the table allows it only inside a function ({entry.name}*)")
        elif entry.mark == "?" and not item.typing:
            problems.append(f"{item}: the table allows it only under TYPE_CHECKING ({entry.name}?)")
    return problems


def cycles_between_rows(found: list[Import], rows: list[Row], package: str = "i2v") -> list[list[str]]:
    """Each set of modules that import one another in a circle (imports that run: TYPE_CHECKING ones never do),
    where the circle passes through two rows or more. Tarjan's strongly connected components."""
    graph: dict[str, set[str]] = {}
    for item in found:
        if not item.typing:
            graph.setdefault(item.source, set()).add(item.target)
            graph.setdefault(item.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph[node]):
            if neighbour not in index:
                connect(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len({row_of(member, rows, package) for member in component}) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


ROWS = direction_table(ARCHITECTURE.read_text(encoding="utf-8"))
FOUND = imports_of(SRC)


def test_the_direction_table_is_read_from_the_architecture_page():
    """The parse found the table as the page shows it: its first and last rows, and the marks it uses."""
    assert ROWS[0].members[0] == "cli.py" and ROWS[-1].members[0] == "errors.py"
    assert len(ROWS) >= 10 and all(row.entries for row in ROWS[:-1])
    marks = {entry.mark for row in ROWS for entry in row.entries}
    assert marks == {"", "*", "?"} and any(entry.upward for row in ROWS for entry in row.entries)


def test_every_module_is_in_one_row_of_the_table():
    orphans = [module for module in module_names(SRC) if row_of(module, ROWS) is None]
    assert not orphans, f"modules in no row of the direction table (docs/architecture.md): {orphans}"


def test_each_row_names_only_rows_below_it_or_marks_the_exception():
    """The table itself points one way: an entry names a row below its own (or its own row too: `models` from a
    model folder), unless it is marked `!` (upward, with its reason under the table). Every entry names a module
    or a package that exists."""
    modules = module_names(SRC)
    problems = []
    for index, row in enumerate(ROWS):
        for entry in row.entries:
            if entry.name == "anything":
                continue
            named = [module for module in modules if module == f"i2v.{entry.name}" or module.startswith(f"i2v.{entry.name}.")]
            if not named:
                problems.append(f"{' '.join(row.members)}: {entry.name} names no module")
            elif not entry.upward and any(row_of(module, ROWS) < index for module in named):
                problems.append(f"{' '.join(row.members)}: {entry.name} is not below it (mark it ! with a reason, or move it)")
    assert not problems, "\n".join(problems)


def test_each_upward_allowance_is_still_used():
    """A `!` entry is an exception with a reason; once the import it allowed is gone, the entry must go too."""
    stale = [
        f"{' '.join(row.members)}: !{entry.name}{entry.mark}"
        for index, row in enumerate(ROWS)
        for entry in row.entries
        if entry.upward and not any(
            row_of(item.source, ROWS) == index and entry_for(item.target, row) == entry for item in FOUND
        )
    ]
    assert not stale, f"upward imports the table allows but no module makes (drop them from the table): {stale}"


def test_every_import_follows_the_direction_table():
    """Top-level, function-local and TYPE_CHECKING imports alike (see the page for what each mark allows)."""
    problems = violations(FOUND, ROWS)
    assert not problems, "imports the direction table of docs/architecture.md does not allow:\n" + "\n".join(problems)


def test_no_import_cycle_joins_two_rows():
    cycles = cycles_between_rows(FOUND, ROWS)
    assert not cycles, "import cycles between rows of the direction table:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_import_parser_sees_every_kind_of_import():
    """On the real source: function-local and TYPE_CHECKING imports are found (so the checks above are not
    passing on top-level imports alone), and `from i2v.web import api` reaches the module, not the package."""
    assert sum(item.local for item in FOUND) > 50 and sum(item.typing for item in FOUND) > 10
    targets = {(item.source, item.target) for item in FOUND}
    assert ("i2v.web.app", "i2v.web.api") in targets and ("i2v.jobs.runner", "i2v.generation") in targets


def test_the_checks_catch_an_upward_import_a_relative_one_and_a_cycle(tmp_path):
    """The checker on a package made for it: each kind of breach is reported, and what the table allows is not."""
    package = tmp_path / "pkg"
    for folder in ("low", "high"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "high" / "a.py").write_text("from ..low import b\ndef f():\n    from pkg.low.c import x\n")
    (package / "low" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import a\n"
        "def g():\n    import pkg.high.a\n"
    )
    (package / "low" / "c.py").write_text("from pkg.high.a import f\nx = 1\n")
    found = imports_of(package)
    assert {(i.source, i.target, i.local, i.typing) for i in found} == {
        ("pkg.high.a", "pkg.low.b", False, False),  # relative, resolved
        ("pkg.high.a", "pkg.low.c", True, False),
        ("pkg.low.b", "pkg.high.a", False, True),
        ("pkg.low.b", "pkg.high.a", True, False),
        ("pkg.low.c", "pkg.high.a", False, False),
    }
    rows = direction_table("### Direction of dependencies\n```\nhigh/ | low.b low.c*\nlow/  | !high.a?\n```\n")
    assert sorted(violations(found, rows, "pkg")) == [
        "pkg.low.b:5 imports pkg.high.a (inside a function): the table allows it only under TYPE_CHECKING (high.a?)",
        "pkg.low.c:1 imports pkg.high.a: the table allows it only under TYPE_CHECKING (high.a?)",
    ]
    assert cycles_between_rows(found, rows, "pkg") == [["pkg.high.a", "pkg.low.b", "pkg.low.c"]]


def test_web_reads_and_changes_jobs_only_through_the_job_service():
    """Routes, the SSE stream, /health and the UI ask `JobService`; the store behind it is the service's own."""
    readers = [path.relative_to(SRC).as_posix() for path in sorted((SRC / "web").rglob("*.py"))
               if re.search(r"\bservice\.store\b|\.store\.(get|list|count|create|finish|update)\b", path.read_text(encoding="utf-8"))]
    assert readers == []
