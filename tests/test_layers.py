"""The import contract (#13): fusebench's modules form layers that import downward only, and no two modules import
each other, directly or around a loop.

Every `import` statement counts, at module level and inside functions (a lazy import is still a dependency: it runs
the first time the function does, and a cycle through it is one refactor away from an ImportError at start-up).
Importing a submodule runs its package's __init__ too; that implicit import is not counted (a package's __init__ may
import its own submodules). Imports under `if TYPE_CHECKING:` do not count: they never run, so they can neither form
an import cycle nor load a layer; annotations may name a higher layer's types. Dynamic imports (importlib.import_module
of a registry's module name, entry points) are not statements and are not seen; the registries that use them name
lower or equal layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("fusebench", "fusebench_train")


@dataclass(frozen=True)
class Layer:
    name: str
    modules: tuple[str, ...]  # "pkg.*": the package and everything under it; else one module
    why: str


# Bottom to top: a module may import modules of its own layer and of the layers listed before it, never of a later one.
LAYERS = (
    Layer(
        "foundation",
        (
            "fusebench",
            "fusebench.errors",
            "fusebench.exits",
            "fusebench.keys",
            "fusebench.scale",
            "fusebench.registry",
            "fusebench.stats",
            "fusebench.progress",
            "fusebench.environment",
        ),
        "utilities any module may use; environment reads fusebench.__version__",
    ),
    Layer(
        "model-call types",
        ("fusebench.backends.base", "fusebench.backends.conventions", "fusebench.speed"),
        "the chat and generation vocabulary (Conversation, GenParams, Completion, the Backend protocol) and the speed "
        "meter that reads completions: no backend, only types",
    ),
    Layer("spec", ("fusebench.spec",), "benchmark and suite specs: what a benchmark is, read from YAML"),
    Layer("sandbox", ("fusebench.sandbox.*",), "isolated execution of untrusted code (code scorers)"),
    Layer(
        "scorers",
        ("fusebench.scorers.*",),
        "per-sample scorers, pure functions of text and target; below data because data preparation and prompts "
        "reuse their conventions (choice letters, gold answers), so a prompt and its scorer cannot disagree",
    ),
    Layer(
        "inputs",
        (
            "fusebench.data",
            "fusebench.preparers",
            "fusebench.preparer_registry",
            "fusebench.targets",
            "fusebench.prompts",
            "fusebench.models",
        ),
        "items (sources, row preparers, target transforms), prompts, and model resolution",
    ),
    Layer("backends and store", ("fusebench.backends.*", "fusebench.store.*"), "model backends; the results store"),
    Layer(
        "stages",
        (
            "fusebench.plan",
            "fusebench.generation_writer",
            "fusebench.judging.*",
            "fusebench.scoring",
            "fusebench.preflight",
        ),
        "a run's plan and the steps over stored samples: generate (the writer), judge, score; preflight checks them "
        "before the first generation",
    ),
    Layer("evaluate", ("fusebench.evaluate",), "one eval: plans, runs the stages, records the results"),
    Layer(
        "command helpers",
        ("fusebench.cli_common",),
        "argparse types and the store options every subcommand module shares: below the modules that build "
        "subcommands with them (report, interop, cli), above the engine, which has no command line",
    ),
    Layer(
        "readers and interop",
        ("fusebench.compare", "fusebench.history", "fusebench.report.*", "fusebench.interop.*"),
        "what reads stored runs (compare, history, tables, reports) and other tools' formats, with their subcommands",
    ),
    Layer("cli", ("fusebench.cli", "fusebench.plugins"), "the `fusebench` entry point and plugin discovery"),
    Layer(
        "training plugin",
        ("fusebench_train.*",),
        "fusebench_train: a plugin (entry point) over evaluate, the store and the reports; fusebench never imports it",
    ),
)


@dataclass(frozen=True)
class Forbidden:
    importers: tuple[str, ...]
    imported: tuple[str, ...]
    why: str


# Imports the layer order allows but the design does not.
FORBIDDEN = (
    Forbidden(
        ("fusebench.compare", "fusebench.history", "fusebench.report.*", "fusebench.interop.*"),
        ("fusebench.evaluate",),
        "readers and interop work on stored runs (a run's plan comes from fusebench.plan): they never run the engine",
    ),
)

# (importer, imported) -> who removes it. Imports that break the contract while their owner's refactor is under way;
# an entry whose import is gone fails the test, so the list only shrinks.
PENDING: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def module_files(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages under root."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (or typing.TYPE_CHECKING) bodies."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name loads: itself, else its longest known prefix (a name imported from a module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """The imports of one module that run (not TYPE_CHECKING-only) and load a module of the packages."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = _type_checking_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from pkg import sub` loads the submodule pkg.sub; `from mod import name` loads mod
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                yield Import(module, target, path, node.lineno)


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    modules = module_files(root, packages)
    return [imp for module, path in modules.items() for imp in imports_of(module, path, modules)]


def _specificity(module: str, entry: str) -> int | None:
    """How closely a layer entry ("pkg.*" or a module) names the module (longer is closer); None: it does not."""
    prefix = entry.removesuffix(".*")
    if module == prefix:
        return len(prefix) + (0 if entry.endswith(".*") else 1)
    if entry.endswith(".*") and module.startswith(prefix + "."):
        return len(prefix)
    return None


def layer_of(module: str, layers: Iterable[Layer] = LAYERS) -> int | None:
    """Index of the module's layer (the most specific entry that names it), None when no layer names it."""
    best: tuple[int, int] | None = None  # (specificity, index)
    for index, layer in enumerate(layers):
        for entry in layer.modules:
            specificity = _specificity(module, entry)
            if specificity is not None and (best is None or specificity > best[0]):
                best = (specificity, index)
    return None if best is None else best[1]


def _named(module: str, entries: Iterable[str]) -> bool:
    return any(_specificity(module, entry) is not None for entry in entries)


def forbidden(graph: list[Import], rules: Iterable[Forbidden] = FORBIDDEN) -> list[tuple[Import, Forbidden]]:
    """Imports a FORBIDDEN rule names, with the rule."""
    return [
        (imp, rule)
        for imp in graph
        for rule in rules
        if _named(imp.importer, rule.importers) and _named(imp.imported, rule.imported)
    ]


def cycles(graph: list[Import]) -> list[list[Import]]:
    """One loop of imports per strongly connected group of modules (Tarjan), each as the imports around it."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in graph:
        edges.setdefault(imp.importer, {}).setdefault(imp.imported, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_loop(sorted(group)[0], group, edges) for group in groups]


def _loop(start: str, group: set[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """The shortest loop from start back to it inside one strongly connected group (breadth first)."""
    came: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w, imp in sorted(edges.get(v, {}).items()):
                if w not in group or w in came:
                    continue
                came[w] = imp
                if w == start:
                    path = [imp]
                    while path[0].importer != start:
                        path.insert(0, came[path[0].importer])
                    return path
                following.append(w)
        frontier = following
    raise AssertionError(f"{start} is in no loop")  # a strongly connected group always has one


def upward(graph: list[Import], layers: tuple[Layer, ...] = LAYERS) -> list[Import]:
    """Imports from a layer into a higher one."""
    return [
        imp
        for imp in graph
        if (a := layer_of(imp.importer, layers)) is not None
        and (b := layer_of(imp.imported, layers)) is not None
        and b > a
    ]


def _describe_upward(imp: Import, root: Path, layers: tuple[Layer, ...] = LAYERS) -> str:
    low, high = layers[layer_of(imp.importer, layers) or 0].name, layers[layer_of(imp.imported, layers) or 0].name
    return f"{imp.where(root)}: {imp.importer} ({low}) imports {imp.imported} ({high}), a higher layer"


def _describe_loop(loop: list[Import], root: Path) -> str:
    steps = " -> ".join(f"{imp.imported} ({imp.where(root)})" for imp in loop)
    return f"import cycle: {loop[0].importer} -> {steps}"


def _check(found: list[tuple[tuple[str, str], str]]) -> None:
    """Fail on what PENDING does not name; xfail (naming owners) when only pending imports break the contract."""
    unexpected = [text for key, text in found if key not in PENDING]
    assert not unexpected, "\n".join(unexpected)
    if found:
        owners = sorted({f"{a} -> {b}: {PENDING[(a, b)]}" for (a, b), _ in found})
        pytest.xfail("pending refactors: " + "; ".join(owners))


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return import_graph(REPO)


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in module_files(REPO) if layer_of(m) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {', '.join(unplaced)}"


def test_no_import_cycles(graph: list[Import]) -> None:
    found = []
    for loop in cycles(graph):
        pending = [imp for imp in loop if (imp.importer, imp.imported) in PENDING]
        key = (pending[0].importer, pending[0].imported) if pending else (loop[0].importer, loop[0].imported)
        found.append((key, _describe_loop(loop, REPO)))
    _check(found)


def test_imports_point_down_the_layers(graph: list[Import]) -> None:
    _check([((imp.importer, imp.imported), _describe_upward(imp, REPO)) for imp in upward(graph)])


def test_readers_never_import_the_engine(graph: list[Import]) -> None:
    _check(
        [
            ((imp.importer, imp.imported), f"{imp.where(REPO)}: {imp.importer} imports {imp.imported}: {rule.why}")
            for imp, rule in forbidden(graph)
        ]
    )


def test_pending_entries_still_exist(graph: list[Import]) -> None:
    present = {(imp.importer, imp.imported) for imp in graph}
    gone = sorted(f"{a} -> {b}" for a, b in PENDING if (a, b) not in present)
    assert not gone, f"remove these PENDING entries (the imports are gone): {', '.join(gone)}"


# --- the checker itself, on a package written here ----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_sees_lazy_and_relative_imports_and_skips_type_checking(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import H\n",
            "pkg/mid.py": "def f():\n    from . import low\n    from .sub.leaf import x\n",
            "pkg/high.py": "import pkg.mid\n\ndef g():\n    from pkg import mid\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/leaf.py": "def h():\n    from ..high import g\n",
        },
    )
    graph = import_graph(tmp_path, ["pkg"])
    found = {(i.importer, i.imported, i.line) for i in graph}
    assert found == {
        ("pkg.mid", "pkg.low", 2),
        ("pkg.mid", "pkg.sub.leaf", 3),
        ("pkg.high", "pkg.mid", 1),
        ("pkg.high", "pkg.mid", 4),
        ("pkg.sub.leaf", "pkg.high", 2),
    }  # low's TYPE_CHECKING import of high is not there
    (loop,) = cycles(graph)
    assert [(i.importer, i.imported) for i in loop] == [
        ("pkg.high", "pkg.mid"),
        ("pkg.mid", "pkg.sub.leaf"),
        ("pkg.sub.leaf", "pkg.high"),
    ]
    assert _describe_loop(loop, tmp_path) == (
        "import cycle: pkg.high -> pkg.mid (pkg/high.py:1) -> pkg.sub.leaf (pkg/mid.py:3) -> pkg.high "
        "(pkg/sub/leaf.py:2)"
    )
    layers = (Layer("bottom", ("pkg", "pkg.low", "pkg.sub.*"), ""), Layer("top", ("pkg.mid", "pkg.high"), ""))
    assert [_describe_upward(i, tmp_path, layers) for i in upward(graph, layers)] == [
        "pkg/sub/leaf.py:2: pkg.sub.leaf (bottom) imports pkg.high (top), a higher layer"
    ]
    rule = Forbidden(("pkg.sub.*",), ("pkg.high", "pkg.low"), "")
    assert [(i.importer, i.imported) for i, _ in forbidden(graph, [rule])] == [("pkg.sub.leaf", "pkg.high")]


def test_the_most_specific_layer_entry_wins() -> None:
    assert LAYERS[layer_of("fusebench.backends.base") or 0].name == "model-call types"
    assert LAYERS[layer_of("fusebench.backends.hf") or 0].name == "backends and store"
    assert LAYERS[layer_of("fusebench.backends") or 0].name == "backends and store"
    assert layer_of("fusebench.nowhere") is None and layer_of("fusebench_trainer") is None
