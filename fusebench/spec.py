"""Benchmark and suite specs: dataclasses loaded and validated from benchmarks/*.yaml."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from fusebench.errors import UsageError

CATEGORIES = ("instruction_following", "general", "math", "code")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: specs parse 7x faster
ENTRY_POINT_GROUP = "fusebench.benchmarks"  # name = "package" (its folder holds specs) or "module:function" (-> folder)
INCLUDE_ENV = "FUSEBENCH_INCLUDE_PATH"  # spec folders added to the others, os.pathsep-separated
_included: list[Path] = []  # folders added by the CLI's --include-path


def benchmarks_dir() -> Path:
    """The first spec folder: $FUSEBENCH_BENCHMARKS (it replaces the bundled one), else the `benchmarks/` folder
    shipped with the package."""
    env = os.environ.get("FUSEBENCH_BENCHMARKS")
    if env:
        return Path(env)
    from fusebench_benchmarks import location

    return location()


def include(folders: Iterable[str | Path]) -> None:
    """Add spec folders for the rest of this process (the CLI's `--include-path`)."""
    _included.extend(Path(folder) for folder in folders)


@cache
def _entry_point_folders() -> tuple[tuple[Path, str], ...]:
    """The spec folders that installed packages declare in the `fusebench.benchmarks` entry-point group, each with
    the entry point it came from. A value without an attribute names a package (or module): the folder it lives in,
    found without running it. A `module:function` value is called and returns the folder."""
    found = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        where = f"entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP})"
        try:
            if ep.attr:
                folder = Path(ep.load()())
            else:
                module = importlib.util.find_spec(ep.module)
                if module is None or not (module.submodule_search_locations or module.origin):
                    raise ModuleNotFoundError(f"no module named {ep.module!r}")
                locations = module.submodule_search_locations
                folder = Path(next(iter(locations))) if locations else Path(str(module.origin)).parent
        except Exception as exc:  # a broken plugin: one line naming it, whatever it raised
            raise UsageError(f"{where}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        found.append((folder, where))
    return tuple(found)


def spec_folders() -> tuple[Path, ...]:
    """Every folder that specs (and `suites/`) are read from, in order: benchmarks_dir(), the folders of the
    `fusebench.benchmarks` entry points, `--include-path`, then $FUSEBENCH_INCLUDE_PATH. A folder named twice counts
    once; one that is not a folder is a UsageError naming where it was named."""
    env = [(Path(p), f"${INCLUDE_ENV}") for p in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if p]
    named = [
        (benchmarks_dir(), "$FUSEBENCH_BENCHMARKS" if os.environ.get("FUSEBENCH_BENCHMARKS") else "fusebench"),
        *_entry_point_folders(),
        *((p, "--include-path") for p in _included),
        *env,
    ]
    folders: list[Path] = []
    for folder, where in named:
        if not folder.is_dir():
            raise UsageError(f"spec folder {folder} (from {where}) is not a folder")
        if folder.resolve() not in (f.resolve() for f in folders):
            folders.append(folder)
    return tuple(folders)


@dataclass(frozen=True)
class HubSource:
    """A dataset on the Hugging Face hub, pinned to a revision."""

    id: str
    revision: str
    split: str
    config: str | None = None


@dataclass(frozen=True)
class DataSpec:
    """Where a benchmark's items come from and how their fields map to ours."""

    path: str | None = None  # a file relative to the spec's folder, absolute, or pkg:PACKAGE/FILE
    sha256: str | None = None
    hub: HubSource | None = None
    id_field: str | None = None  # None: the row index is the id
    input_field: str = "question"
    target_field: str = "answer"
    target_transform: str = "identity"
    prepare: str | None = None  # a registered row preparer (fusebench/preparer_registry.py), run before field mapping
    options: dict[str, Any] = field(default_factory=dict)  # free-form settings for the preparer
    folder: Path | None = field(default=None, compare=False, repr=False)  # the spec's folder (set on load, not YAML)


@dataclass(frozen=True)
class PromptSpec:
    """How an item becomes a chat conversation."""

    user: str = "{input}"
    system: str | None = None
    choices_field: str | None = None  # multiple choice: `{input}` becomes the question with lettered options
    turns_field: str | None = None  # multi-turn: item field holding the user turns (strings or {"content": ...})
    prefill: str | None = None  # the assistant turn starts with this text and the model continues it (EvalPlus)
    default_system: str = "keep"  # "drop": no system turn, and a template's default one is cut (TIGER-Lab MMLU-Pro)
    choices_format: str = "fusebench"  # how choices_field renders `{input}`: a name in CHOICES_FORMATS
    strip_input: bool = False  # `{input}` with surrounding whitespace stripped (EvalPlus strips task prompts)


DEFAULT_SYSTEM = ("keep", "drop")
CHOICES_FORMATS = ("fusebench", "tiger_lab_zero_shot")  # scorers/choice.py renders each
# completion: the prefill (if any) + the generated text; evalplus: EvalPlus's raw solution of a chat model (tabs as
# 4 spaces, cut at the first ```); evalplus_sanitized: that, sanitized like `evalplus.sanitize`
ANSWER_MODES = ("completion", "evalplus", "evalplus_sanitized")


@dataclass(frozen=True)
class JudgeSpec:
    """How a judged benchmark's outputs are judged; the judge model and prices can be overridden per run."""

    mode: str  # a registered judge mode (fusebench.judging.modes): pairwise, single, alpaca_eval, alignbench, ...
    model: str  # the reference judge
    prompt_version: str  # names the judge prompt; part of every judgment's cache key
    prompt_file: str | None = None  # judge prompt/config, relative to the spec's folder (or to data_dir_env)
    baseline: str | None = None  # name of the baseline model whose answers are compared against
    baseline_file: str | None = None
    reference_file: str | None = None  # reference answers (MT-Bench)
    data_dir_env: str | None = None  # env var naming a local copy of unlicensed data (AlignBench)
    price_input_per_mtok: float | None = None  # USD per million input tokens of `model`
    price_output_per_mtok: float | None = None
    temperature: float = 0.0
    max_tokens: int = 2048
    folder: Path | None = field(default=None, compare=False, repr=False)  # the spec's folder (set on load, not YAML)


@dataclass(frozen=True)
class GenerationBy:
    """Generation overrides per item, picked by a row field (e.g. MT-Bench samples writing at 0.7, math greedy)."""

    field: str
    values: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class BenchmarkSpec:
    id: str
    version: int
    category: str
    data: DataSpec
    prompt: PromptSpec
    scorer: str
    generation: dict[str, Any] = field(default_factory=dict)
    metric: str = "accuracy"
    size: int | None = None
    description: str = ""
    breakdown_field: str | None = None  # item field to report per-group scores by (e.g. MMLU-Pro's category)
    cache_as: str | None = None  # share generations with another benchmark (same prompts, another scorer)
    turns: int = 1  # > 1: turn t sees the model's own answers to turns 1..t-1 (MT-Bench)
    judge: JudgeSpec | None = None  # judged benchmarks: the judge stage scores them, not `scorer`
    generation_by: GenerationBy | None = None  # per-item overrides of `generation` (suite and CLI still win)
    answer: str = "completion"  # what the scorer sees: a name in ANSWER_MODES (scorers/sanitize.py)

    @property
    def generation_id(self) -> str:
        """The benchmark id that generation cache keys use."""
        return self.cache_as or self.id


@dataclass(frozen=True)
class SuiteEntry:
    benchmark: str
    limit: int | None = None


@dataclass(frozen=True)
class SuiteSpec:
    id: str
    entries: tuple[SuiteEntry, ...]
    generation: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _read_spec(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """A spec file's mapping and the line of each of its top-level keys. A file that is not YAML names its line
    and column (yaml's problem mark)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read spec {path}: {exc}".splitlines()[0]) from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None:
            context += f" from line {start.line + 1}"
        raise UsageError(f"bad spec {where}: {problem}" + (f" ({context})" if context else "")) from exc
    finally:
        loader.dispose()
    if not isinstance(raw, dict) or not isinstance(node, yaml.MappingNode):
        raise UsageError(f"bad spec {path}: not a mapping of fields")
    return raw, {str(key.value): key.start_mark.line + 1 for key, _ in node.value}


def _read_yaml(path: Path) -> dict[str, Any]:
    return _read_spec(path)[0]


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    try:
        return cls(**raw)
    except TypeError as exc:
        raise UsageError(f"bad spec {where}: {exc}") from exc


def _check_fields(raw: dict[str, Any], where: str, lines: dict[str, int]) -> None:
    """Unknown and missing top-level fields, each named with its line."""
    known = {f.name: f for f in fields(BenchmarkSpec)}
    for key in raw:
        if key not in known:
            raise UsageError(f"bad spec {_at(where, lines, key)}: unknown field {key!r}")
    for name, f in known.items():
        optional = name in ("data", "prompt") or f.default is not MISSING or f.default_factory is not MISSING
        if name not in raw and not optional:
            raise UsageError(f"bad spec {where}: missing field {name!r}")


def _at(where: str, lines: dict[str, int], key: str) -> str:
    """`where` with the line of a top-level key, when known."""
    return f"{where}:{lines[key]}" if key in lines else where


def parse_benchmark(
    raw: dict[str, Any], where: str, lines: dict[str, int] | None = None, folder: Path | None = None
) -> BenchmarkSpec:
    """Validate one benchmark mapping (as read from YAML); `lines` (top-level key -> line) places the errors. The
    spec's relative data and judge files resolve against `folder` (None: benchmarks_dir())."""
    lines = lines or {}
    _check_fields(raw, where, lines)
    raw = dict(raw)
    data = dict(raw.pop("data", {}) or {})
    judge = raw.pop("judge", None)
    for name, section in (("data", data), ("judge", judge)):
        if isinstance(section, dict) and "folder" in section:
            raise UsageError(f"bad spec {_at(where, lines, name)}: unknown field {name}.folder")
    hub = data.pop("hub", None)
    hub_spec = _build(HubSource, hub, where) if hub else None
    data_spec = _build(DataSpec, {**data, "hub": hub_spec, "folder": folder}, where)
    prompt = _build(PromptSpec, raw.pop("prompt", {}) or {}, where)
    judge_raw = {**judge, "folder": folder} if isinstance(judge, dict) else judge
    judge_spec = _build(JudgeSpec, judge_raw, where) if judge else None
    by = raw.pop("generation_by", None)
    by_spec = _build(GenerationBy, by, where) if by else None
    if by_spec:
        if not (isinstance(by_spec.values, dict) and all(isinstance(v, dict) for v in by_spec.values.values())):
            raise UsageError(f"bad spec {where}: generation_by.values must map each value to generation overrides")
        # keys as the row values are matched (str) and as a stored run reads them back (JSON): `1:` and "1" alike
        by_spec = GenerationBy(by_spec.field, {str(k): v for k, v in by_spec.values.items()})
    spec: BenchmarkSpec = _build(
        BenchmarkSpec,
        {**raw, "data": data_spec, "prompt": prompt, "judge": judge_spec, "generation_by": by_spec},
        where,
    )
    if spec.category not in CATEGORIES:
        raise UsageError(f"bad spec {_at(where, lines, 'category')}: category {spec.category!r} not in {CATEGORIES}")
    for name, value, allowed in (
        ("prompt.default_system", prompt.default_system, DEFAULT_SYSTEM),
        ("prompt.choices_format", prompt.choices_format, CHOICES_FORMATS),
        ("answer", spec.answer, ANSWER_MODES),
    ):
        if value not in allowed:
            raise UsageError(f"bad spec {where}: {name} {value!r} not in {allowed}")
    if spec.turns > 1 and (prompt.prefill or prompt.default_system == "drop"):
        raise UsageError(f"bad spec {where}: prompt.prefill and default_system drop are for single-turn benchmarks")
    if spec.turns < 1 or (spec.turns > 1 and not prompt.turns_field):
        raise UsageError(f"bad spec {where}: turns must be >= 1, and turns > 1 needs prompt.turns_field")
    if not (data_spec.path or data_spec.hub):
        raise UsageError(f"bad spec {where}: data needs a path or a hub source")
    return spec


@dataclass(frozen=True)
class Catalog:
    """What a specs folder holds: the valid specs by id, and the broken files by the id each stands for (its `id`
    when readable, else its file name). A broken spec fails only the commands that use it."""

    specs: dict[str, Any]
    broken: dict[str, str]  # id -> one line naming the file (and line) and the problem
    origins: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)  # id -> (file, key -> line)


def _spec_id(path: Path, raw: dict[str, Any] | None) -> str:
    value = raw.get("id") if raw else None
    return value if isinstance(value, str) and value else path.stem


def _defined_twice(kind: str, files: dict[str, list[Path]]) -> dict[str, str]:
    """The ids that more than one file defines (in one folder or across folders), each with a line naming them."""
    return {
        spec_id: f"{kind} {spec_id!r} is defined twice: {', '.join(map(str, paths))}"
        for spec_id, paths in files.items()
        if len(paths) > 1
    }


@cache
def _benchmark_catalog(roots: tuple[Path, ...]) -> Catalog:
    specs: dict[str, BenchmarkSpec] = {}
    broken: dict[str, str] = {}
    files: dict[str, list[Path]] = {}
    origins: dict[str, tuple[str, dict[str, int]]] = {}
    for root in roots:
        for path in sorted(root.glob("*.yaml")):
            raw = None
            try:
                raw, lines = _read_spec(path)
                spec = parse_benchmark(raw, str(path), lines, folder=root)
            except UsageError as exc:
                broken[_spec_id(path, raw)] = str(exc)
                continue
            files.setdefault(spec.id, []).append(path)
            specs[spec.id] = spec
            origins[spec.id] = (str(path), lines)
    broken.update(_defined_twice("benchmark", files))
    for spec_id in broken:
        specs.pop(spec_id, None)
    return Catalog(specs, broken, origins)


def _catalog() -> Catalog:
    return _benchmark_catalog(spec_folders())


def spec_location(benchmark_id: str, key: str | None = None) -> str:
    """Where a benchmark's spec (or one of its top-level keys) is written: `file` or `file:line`."""
    path, lines = _catalog().origins.get(benchmark_id, (f"{benchmark_id}.yaml", {}))
    return _at(path, lines, key) if key else path


def all_benchmarks() -> dict[str, BenchmarkSpec]:
    """Every valid benchmark spec, by id (broken ones: broken_benchmarks)."""
    return _catalog().specs


def broken_benchmarks() -> dict[str, str]:
    """Benchmark spec files that do not load: id (or file name) -> the problem, naming file and line."""
    return _catalog().broken


def get_benchmark(benchmark_id: str) -> BenchmarkSpec:
    catalog = _catalog()
    if benchmark_id in catalog.broken:
        raise UsageError(catalog.broken[benchmark_id])
    if benchmark_id not in catalog.specs:
        raise UsageError(f"unknown benchmark {benchmark_id!r}; known: {', '.join(sorted(catalog.specs))}")
    return catalog.specs[benchmark_id]


def averaged(benchmark_ids: Iterable[str]) -> set[str]:
    """The benchmarks that count in a plain-mean average: all but a second scoring of answers whose first scoring
    is there too (mbpp_plus beside mbpp: FuseChat-3.0 averages MBPP once). Unknown (imported) ids count."""
    ids = set(benchmark_ids)
    specs = all_benchmarks()
    return {b for b in ids if b not in specs or specs[b].cache_as not in ids}


def _parse_suite(path: Path) -> SuiteSpec:
    raw, lines = _read_spec(path)
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise UsageError(f"bad spec {path}: a suite needs an id")
    members = raw.get("benchmarks", [])
    if not isinstance(members, list):
        raise UsageError(f"bad spec {_at(str(path), lines, 'benchmarks')}: benchmarks must be a list")
    entries = []
    for entry in members:
        entry = {"benchmark": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict):
            raise UsageError(f"bad spec {_at(str(path), lines, 'benchmarks')}: a member is a name or a mapping")
        entries.append(_build(SuiteEntry, entry, str(path)))
    generation = raw.get("generation", {}) or {}
    if not isinstance(generation, dict):
        raise UsageError(f"bad spec {_at(str(path), lines, 'generation')}: generation must be a mapping")
    return SuiteSpec(
        id=raw["id"], entries=tuple(entries), generation=generation, description=raw.get("description", "")
    )


def _suite_catalog() -> Catalog:
    """The suites of every spec folder's `suites/`."""
    suites: dict[str, SuiteSpec] = {}
    broken: dict[str, str] = {}
    files: dict[str, list[Path]] = {}
    for path in (p for root in spec_folders() for p in sorted((root / "suites").glob("*.yaml"))):
        try:
            suite = _parse_suite(path)
        except UsageError as exc:
            try:
                raw: dict[str, Any] | None = _read_yaml(path)
            except UsageError:
                raw = None
            broken[_spec_id(path, raw)] = str(exc)
            continue
        files.setdefault(suite.id, []).append(path)
        suites[suite.id] = suite
    broken.update(_defined_twice("suite", files))
    for suite_id in broken:
        suites.pop(suite_id, None)
    return Catalog(suites, broken)


def all_suites() -> dict[str, SuiteSpec]:
    """Every valid suite spec, by id (broken ones: broken_suites)."""
    return _suite_catalog().specs


def broken_suites() -> dict[str, str]:
    """Suite files that do not load: id (or file name) -> the problem, naming file and line."""
    return _suite_catalog().broken


def get_suite(suite_id: str) -> SuiteSpec:
    catalog = _suite_catalog()
    if suite_id in catalog.broken:
        raise UsageError(catalog.broken[suite_id])
    if suite_id not in catalog.specs:
        raise UsageError(f"unknown suite {suite_id!r}; known: {', '.join(sorted(catalog.specs))}")
    return catalog.specs[suite_id]  # type: ignore[no-any-return]
