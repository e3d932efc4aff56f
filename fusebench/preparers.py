"""The built-in row preparers (filtering, reshaping, option shuffling), registered by name in
fusebench.preparer_registry, which imports this module when a spec asks for one of them."""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from datetime import date, datetime
from typing import Any

from fusebench.errors import UsageError
from fusebench.preparer_registry import register
from fusebench.scorers.choice import LETTERS, shuffle_options
from fusebench.spec import BenchmarkSpec

# --- MMLU-redux ----------------------------------------------------------------------------------------


def mmlu_redux_gold(row: dict[str, Any], corrected: bool) -> str | None:
    """The gold letter of an MMLU-redux row, or None when its annotation excludes it.

    Kept: error_type "ok" (gold: the MMLU answer index); with `corrected`, also "wrong_groundtruth" rows whose
    annotators' `correct_answer` is one letter A-D (gold: that letter). Every other error type is excluded.
    """
    error_type = row.get("error_type")
    if error_type == "ok":
        return LETTERS[int(row["answer"])]
    if corrected and error_type == "wrong_groundtruth":
        fixed = str(row.get("correct_answer") or "").strip()
        if len(fixed) == 1 and fixed in "ABCD":
            return fixed
    return None


@register("mmlu_redux")
def prepare_mmlu_redux(rows: list[dict[str, Any]], spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """Keep the rows whose annotation confirms (or corrects) the answer; add `id` (subject/row index within the
    subject), `subject`, `options` (the choices) and the gold letter `gold`. Option: `corrected_groundtruth`
    (default true)."""
    corrected = bool(spec.data.options.get("corrected_groundtruth", True))
    out: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for row in rows:
        subject = str(row.get("hub_config") or row.get("subject") or "")
        position = index.get(subject, 0)
        index[subject] = position + 1
        gold = mmlu_redux_gold(row, corrected)
        if gold is not None:
            out.append(
                {
                    **row,
                    "id": f"{subject}/{position}",
                    "subject": subject,
                    "options": list(row["choices"]),
                    "gold": gold,
                }
            )
    return out


# --- GPQA ----------------------------------------------------------------------------------------------

GPQA_ANSWERS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


@register("gpqa")
def prepare_gpqa(rows: list[dict[str, Any]], spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """Shuffle each question's four answers with `shuffle_seed` (a spec option, so recorded with the run) and
    the item id; add `options` (shuffled) and `gold` (the letter of the correct answer)."""
    seed = spec.data.options.get("shuffle_seed")
    if not isinstance(seed, int):
        raise UsageError(f"benchmark {spec.id}: data.options.shuffle_seed must be an integer")
    id_field = spec.data.id_field
    out = []
    for index, row in enumerate(rows):
        item_id = str(row[id_field]) if id_field else str(index)
        try:
            answers = [str(row[name]).strip() for name in GPQA_ANSWERS]
        except KeyError as exc:
            raise UsageError(f"benchmark {spec.id}: row {index} has no field {exc}") from exc
        options, correct = shuffle_options(answers, 0, seed, item_id)
        out.append({**row, "options": options, "gold": LETTERS[correct]})
    return out


# --- LiveCodeBench -------------------------------------------------------------------------------------

MAX_TESTS_BYTES = 1 << 30  # a decompressed private-test blob larger than this is refused


class _DataOnlyUnpickler(pickle.Unpickler):
    """Loads only plain data (str, bytes, numbers, lists, dicts, ...): any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is accepted")


def decode_tests(raw: Any) -> list[dict[str, Any]]:
    """LiveCodeBench test cases from a `public_test_cases` / `private_test_cases` field: a JSON list, or (private
    tests) base64 of zlib of a pickled JSON string. The pickle is read data-only: no global (class, function)
    is ever resolved, the decompressed size is capped, and the result must be JSON text."""
    if isinstance(raw, list):
        return raw
    text = str(raw or "")
    if not text.strip():
        return []
    try:
        tests = json.loads(text)
    except json.JSONDecodeError:
        tests = json.loads(_unpack(text))
    if not isinstance(tests, list) or not all(isinstance(t, dict) and {"input", "output"} <= t.keys() for t in tests):
        raise ValueError("test cases are not a list of {input, output} objects")
    return tests


def _unpack(text: str) -> str:
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"test cases are neither JSON nor base64: {exc}") from exc
    inflate = zlib.decompressobj()
    blob = inflate.decompress(packed, MAX_TESTS_BYTES)
    if inflate.unconsumed_tail:
        raise ValueError(f"decompressed test cases exceed {MAX_TESTS_BYTES} bytes")
    value = _DataOnlyUnpickler(io.BytesIO(blob)).load()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise ValueError(f"unpickled test cases are a {type(value).__name__}, not JSON text")
    return value


def _day(value: Any, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError as exc:
        raise UsageError(f"{what}: not an ISO date: {value!r}") from exc


def lcb_prompt(question: str, starter_code: str) -> str:
    """The user message as lcb_runner builds it (FuseEval's fork, get_generic_question_template_answer): the problem,
    then the format (complete the starter code, or a stdin/stdout program), then the answer header."""
    prompt = f"### Question:\n{question}\n\n"
    if starter_code:
        prompt += f"### Format: {LCB_FORMAT_STARTER}\n```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {LCB_FORMAT_STDIN}\n```python\n# YOUR CODE HERE\n```\n\n"
    return prompt + "### Answer: (use the provided format with backticks)\n\n"


# lcb_runner's PromptConstants (FuseEval's fork)
LCB_FORMAT_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code within "
    "delimiters."
)
LCB_FORMAT_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample "
    "inputs). Enclose your code within delimiters as follows."
)


@register("livecodebench")
def prepare_livecodebench(rows: list[dict[str, Any]], spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """Keep problems whose `contest_date` lies in [start_date, end_date] (spec options, inclusive days), decode
    their public + private tests and build the prompt. Each row gets `prompt`, `tests` ([{input, output}]),
    `testtype` ("functional" when the metadata names a `func_name`, else "stdin"), `func_name` and `contest_day`; the
    raw test fields are dropped."""
    options = spec.data.options
    start = _day(options.get("start_date", "0001-01-01"), f"benchmark {spec.id}: data.options.start_date")
    end = _day(options.get("end_date", "9999-12-31"), f"benchmark {spec.id}: data.options.end_date")
    out = []
    for row in rows:
        day = _day(row["contest_date"], f"benchmark {spec.id}: problem {row.get('question_id')}")
        if not start <= day <= end:
            continue
        where = f"benchmark {spec.id}: problem {row['question_id']}"
        try:
            tests = decode_tests(row["public_test_cases"]) + decode_tests(row["private_test_cases"])
            metadata = row.get("metadata") or {}
            metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
        except (ValueError, TypeError, LookupError, pickle.UnpicklingError, zlib.error, EOFError) as exc:
            raise UsageError(f"{where}: cannot decode its tests: {exc}") from exc
        if not tests:
            raise UsageError(f"{where}: no test cases")
        func_name = metadata.get("func_name")  # as LiveCodeBench: a func_name makes the tests functional
        kind = "functional" if func_name else "stdin"
        kept = {k: v for k, v in row.items() if k not in ("public_test_cases", "private_test_cases")}
        out.append({
            **kept,
            "contest_day": day.isoformat(),
            "prompt": lcb_prompt(str(row["question_content"]), str(row.get("starter_code") or "")),
            "tests": [{"input": str(t["input"]), "output": str(t["output"])} for t in tests],
            "testtype": kind,
            "func_name": func_name or None,
        })  # fmt: skip
    return out


# --- LiveBench -----------------------------------------------------------------------------------------


def _livebench_day(value: Any, what: str) -> date | None:
    """A LiveBench date field (a datetime from the hub, an ISO string in JSONL) as a day; None when empty."""
    if value is None or value == "":
        return None
    return _day(value, what)


@register("livebench")
def prepare_livebench(rows: list[dict[str, Any]], spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """LiveBench questions of one release, selected as LiveBench's `load_questions` does for a release option: kept
    when `livebench_release_date` is one of `releases` up to `release` and there is no `livebench_removal_date` on or
    before `release`; only questions of `categories` are kept (options; all three required). Each row gets `prompt`
    (turns[0] as given: the questions carry their own answer-format instructions) and its dates as ISO strings."""
    options = spec.data.options
    where = f"benchmark {spec.id}"
    if not (options.get("release") and options.get("releases") and options.get("categories")):
        raise UsageError(f"{where}: data.options needs release, releases and categories")
    release = _day(options["release"], f"{where}: data.options.release")
    allowed = {d for r in options["releases"] if (d := _day(r, f"{where}: data.options.releases")) <= release}
    categories = set(options["categories"])
    out = []
    for row in rows:
        if row.get("category") not in categories:
            continue
        question = f"{where}: question {row.get('question_id')}"
        added = _livebench_day(row.get("livebench_release_date"), f"{question}: livebench_release_date")
        removed = _livebench_day(row.get("livebench_removal_date"), f"{question}: livebench_removal_date")
        if added is None or added not in allowed or (removed is not None and removed <= release):
            continue
        raw_turns = row.get("turns")  # a list, or a numpy array when read from Parquet
        turns = [str(turn) for turn in raw_turns] if raw_turns is not None else []
        if len(turns) != 1:  # LiveBench scores the answer to the last turn; fusebench sends one
            raise UsageError(f"{question}: {len(turns)} turns (LiveBench-0831 questions have exactly 1)")
        out.append({
            **row,
            "turns": turns,
            "prompt": turns[0],
            "livebench_release_date": added.isoformat(),
            "livebench_removal_date": removed.isoformat() if removed else "",
        })  # fmt: skip
    return out
