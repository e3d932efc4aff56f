"""What a scorer sees of a generation (a spec's `answer` mode), and an EvalPlus-style code sanitizer.

Answer modes (spec.ANSWER_MODES):
- "completion": the prefill, if the spec has one, followed by the generated text (the reference's scorer sees both).
- "evalplus": the solution FuseEval's EvalPlus fork writes for a chat model: the generated text (which continues the
  "```python" prefill) with tabs as four spaces, cut at its first "```".
- "evalplus_sanitized": that solution after `sanitize`, as `evalplus.sanitize` rewrites it before evaluation.

`sanitize` follows the rules of `evalplus.sanitize` (EvalPlus 0.3.1, what FuseEval's `pip install evalplus` got),
reimplemented on Python's `ast` instead of tree-sitter: take the longest run of at least two lines that parses (else
the first line); keep every top-level import, then the top-level classes, functions that contain a `return`, and
plain assignments (first definition of a name wins), only those the entry point reaches through the names they
mention, in their original order. Decorated definitions, top-level statements (prints, asserts,
`if __name__ == "__main__":`) and everything the entry point does not reach go. When that leaves nothing, the run
itself is the answer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from fusebench.spec import BenchmarkSpec

_FENCE = "```"


def answer_text(spec: BenchmarkSpec, item: dict[str, Any], output: str) -> str:
    """The text a scorer sees for one generation of `spec`'s item, per the spec's `answer` mode."""
    if spec.answer == "completion":
        return (spec.prompt.prefill or "") + output
    solution = evalplus_solution(output)
    if spec.answer == "evalplus":
        return solution
    return sanitize(solution, str(item["entry_point"]))


def evalplus_solution(completion: str) -> str:
    """FuseEval's raw EvalPlus solution of a chat completion: tabs as four spaces, cut at the first ```."""
    return completion.replace("\t", "    ").split(_FENCE)[0]


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def longest_parsing_block(text: str) -> str:
    """The run of lines (at least two, as EvalPlus counts them) with the most non-blank lines that parses as Python;
    the first such run on ties. Without one, the first line (as EvalPlus's `code_extract`)."""
    lines = text.split("\n")
    filled = [0]
    for line in lines:
        filled.append(filled[-1] + bool(line.strip()))
    best, pair = 0, (0, 0)
    for i in range(len(lines)):
        if filled[-1] - filled[i] <= best:
            break
        for j in range(len(lines) - 1, i, -1):  # longest first: the first that parses is this start's best
            count = filled[j + 1] - filled[i]
            if count <= best:
                break
            if _parse("\n".join(lines[i : j + 1])) is not None:
                while j > i + 1 and not lines[j].strip():  # the shortest run with that count, as EvalPlus finds it
                    j -= 1
                best, pair = count, (i, j)
                break
    return "\n".join(lines[pair[0] : pair[1] + 1])


def _names(node: ast.AST) -> set[str]:
    """Every identifier a definition mentions (variables, attributes, parameters, keywords, nested definitions)."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif isinstance(sub, ast.arg | ast.keyword) and sub.arg:
            found.add(sub.arg)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(sub.name)
        elif isinstance(sub, ast.Global | ast.Nonlocal):
            found.update(sub.names)
    return found


def _assigned_name(stmt: ast.Assign | ast.AnnAssign) -> str | None:
    """The name an assignment defines, as EvalPlus reads it: its first bare-name target, else a bare-name value."""
    target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
    if isinstance(target, ast.Name):
        return target.id
    return stmt.value.id if isinstance(stmt.value, ast.Name) else None  # `a, b = c` names c (tree-sitter's quirk)


def _has_return(node: ast.AST) -> bool:
    return any(isinstance(sub, ast.Return) for sub in ast.walk(node))


def _definitions(tree: ast.Module) -> Iterator[tuple[str | None, ast.stmt]]:
    """Top-level definitions EvalPlus keeps a candidate of, with the name each defines."""
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and not stmt.decorator_list:
            if isinstance(stmt, ast.ClassDef) or _has_return(stmt):
                yield stmt.name, stmt
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            yield _assigned_name(stmt), stmt


def _reachable(entry_point: str, deps: dict[str | None, set[str]]) -> set[str]:
    seen, todo = {entry_point}, [entry_point]
    while todo:
        for name in deps.get(todo.pop(), set()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def sanitize(text: str, entry_point: str) -> str:
    """The code EvalPlus would run for `text`: imports + what `entry_point` depends on (see module doc)."""
    code = longest_parsing_block(text)
    tree = _parse(code)
    if tree is None:  # no run parses, nor the first line
        return code
    imports = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
    kept: dict[str | None, ast.stmt] = {}
    for name, stmt in _definitions(tree):
        kept.setdefault(name, stmt)
    reach = _reachable(entry_point, {name: _names(stmt) for name, stmt in kept.items()})
    parts = [ast.get_source_segment(code, s) or "" for s in imports]
    parts += [ast.get_source_segment(code, s) or "" for name, s in kept.items() if name in reach]
    return "\n".join(parts).strip() or code
