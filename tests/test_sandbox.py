"""The sandbox's contract: verdicts, captured output, limits, parallelism, clean-up; split mode's plain-data wire."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.sandbox import Limits, Program, Sandbox, scaled_timeout
from fusebench.sandbox import _wire as wire


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(workers=2)


@pytest.mark.timeout(30)
def test_passing_and_failing_programs(sandbox: Sandbox) -> None:
    code = "def f(x):\n    return x + 1\n"
    assert sandbox.run(Program(code, "assert f(1) == 2\n")).passed
    failed = sandbox.run(Program(code, "assert f(1) == 2\nassert f(2) == 4, 'two'\nassert f(3) == 4\n"))
    assert failed.status == "failed"
    assert failed.failed_test == "assert f(2) == 4, 'two'"
    assert "AssertionError: two" in failed.reason
    broken = sandbox.run(Program("def f(:\n", "assert True\n"))
    assert broken.status == "failed" and "SyntaxError" in broken.reason and "solution" in broken.reason


@pytest.mark.timeout(30)
def test_output_is_captured_and_capped(sandbox: Sandbox) -> None:
    outcome = sandbox.run(
        Program("import sys\nprint('a' * 5000)\nprint('oops', file=sys.stderr)\n", "assert True\n"),
        Limits(output_cap=100),
    )
    assert outcome.passed
    assert outcome.stdout == "a" * 100
    assert outcome.stderr == "oops\n"


@settings(max_examples=15, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_printed_text_comes_back_verbatim(text: str) -> None:
    outcome = _shared.run(Program(f"import sys\nsys.stdout.write({text!r})\n", "assert True\n"))
    assert outcome.passed and outcome.stdout == text


_shared = Sandbox(workers=2)


@pytest.mark.timeout(30)
def test_wall_clock_timeout_and_cpu_limit(sandbox: Sandbox) -> None:
    start = time.monotonic()
    sleeper = sandbox.run(Program("import time\ntime.sleep(60)\n"), Limits(wall_s=1.0))
    assert sleeper.status == "timeout" and "wall-clock" in sleeper.reason
    assert time.monotonic() - start < 3
    spinner = sandbox.run(Program("while True:\n    pass\n"), Limits(wall_s=5.0, cpu_s=1.0))
    assert spinner.status == "timeout" and "CPU" in spinner.reason
    assert spinner.duration_s < 4.5


@pytest.mark.timeout(30)
def test_memory_limit(sandbox: Sandbox) -> None:
    outcome = sandbox.run(Program("x = bytearray(600 * 2**20)\n", "assert True\n"), Limits(memory_mb=256))
    assert outcome.status == "memory"
    assert sandbox.run(Program("x = bytearray(100 * 2**20)\n", "assert True\n"), Limits(memory_mb=512)).passed


@pytest.mark.timeout(30)
def test_scratch_dir_is_writable_then_emptied(sandbox: Sandbox) -> None:
    code = "import os\nopen('f.txt', 'w').write('hi')\nos.makedirs('d/e')\nos.chmod('d', 0)\nprint(os.getcwd())\n"
    outcome = sandbox.run(Program(code, "assert open('f.txt').read() == 'hi'\n"))
    assert outcome.passed, outcome
    scratch = Path(outcome.stdout.strip())
    assert not scratch.exists() or list(scratch.iterdir()) == []
    after = sandbox.run(Program("import os\nprint(sorted(os.listdir('.')))\n", "assert True\n"))
    assert after.stdout.strip() == "[]"


@pytest.mark.timeout(30)
def test_a_forged_verdict_without_the_nonce_does_not_pass(sandbox: Sandbox) -> None:
    code = (
        "import os\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        '        os.write(fd, b\'{"status": "passed", "nonce": "guess"}\\n\')\n'
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    )
    outcome = sandbox.run(Program(code, "assert True\n"))
    assert not outcome.passed
    assert outcome.status in {"sandbox_violation", "failed"}


@pytest.mark.timeout(30)
def test_run_many_keeps_order_and_runs_in_parallel(sandbox: Sandbox) -> None:
    programs = [Program(f"import time\ntime.sleep(2)\nx = {i}\n", f"assert x == {i}\n") for i in range(4)]
    programs.append(Program("x = 0\n", "assert x == 1\n"))
    start = time.monotonic()
    outcomes = sandbox.run_many(programs)
    assert [o.passed for o in outcomes] == [True, True, True, True, False]
    assert time.monotonic() - start < 7.0  # 4 two-second sleeps on 2 slots (~4 s), not one after another (8 s)


@pytest.mark.timeout(60)
def test_warns_when_many_programs_time_out(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = Sandbox(workers=2)
    with caplog.at_level(logging.WARNING, logger="fusebench.sandbox.runner"):
        sandbox.run_many([Program("while True:\n    pass\n")] * 20, Limits(wall_s=0.2))
    assert any("overloaded" in r.getMessage() for r in caplog.records)


@given(
    st.floats(min_value=0, max_value=1e4),
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=0.1, max_value=20),
)
def test_scaled_timeout_is_max_of_floor_and_k_times_reference(ref: float, floor: float, k: float) -> None:
    t = scaled_timeout(ref, floor, k)
    assert t >= floor and t >= k * ref
    assert t in (floor, k * ref)
    assert Limits().with_reference(ref, floor, k).wall_s == t


# --- split mode: the tests run in the judge, the model's code only answers calls with plain data -----------


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary() | st.complex_numbers(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(st.integers() | st.text(), max_size=4)
        | st.sets(st.integers() | st.text(), max_size=4)
        | st.dictionaries(st.text() | st.integers() | st.tuples(st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Equal with types compared exactly, nan equal to nan and -0.0 told from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float | complex):
        return repr(a) == repr(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)  # type: ignore[attr-defined,index]
    return a == b


@settings(max_examples=200, deadline=None)
@given(PLAIN)
def test_plain_data_survives_the_wire_exactly(value: object) -> None:
    assert _same(wire.loads(wire.dumps(value)), value)


@pytest.mark.parametrize(
    "text",
    [
        "NaN", '["f", NaN]', '["x", 1]', '["i", 5]', '["b", 1]', '["S", [["l", []]]]', '["d", [[["l", []], ["n"]]]]',
        '["l", 5]', '["n", 1]', '["c", "0x1p+0"]', "[]", '{"status": "passed"}', '["y", "not base64!"]',
    ],
)  # fmt: skip
def test_the_wire_rejects_anything_but_its_own_format(text: str) -> None:
    with pytest.raises(ValueError):
        wire.loads(text)


def test_subclasses_of_plain_types_travel_as_their_base_type() -> None:
    class Yes(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    back = wire.loads(wire.dumps([Yes(3), (1, 2)]))
    assert type(back[0]) is int and back[0] != 4
    with pytest.raises(wire.NotPlainData):
        wire.dumps(x for x in [])


SPLIT_CODE = """
import time

def f(x):
    return [x, x / 2, float("nan"), float("-inf"), {(1, 2): b"ab"}, {3}, 2**100, 1 + 2j]

def boom(kind):
    raise {"value": ValueError, "key": KeyError, "custom": type("Custom", (ValueError,), {})}[kind]("bad")

def gen():
    yield 1

def sort_in_place(xs):
    xs.sort()
    return xs

def slow():
    time.sleep(30)
"""


@pytest.mark.timeout(60)
def test_split_calls_return_plain_data_and_rebuilt_exceptions(sandbox: Sandbox) -> None:
    tests = """
r = f(3)
assert r[0] == 3 and r[1] == 1.5 and r[2] != r[2] and r[3] == float("-inf")
assert r[4] == {(1, 2): b"ab"} and r[5] == {3} and r[6] == 2**100 and r[7] == 1 + 2j
for kind in ("value", "custom"):
    try:
        boom(kind)
    except ValueError as exc:
        assert str(exc) == "bad"
    else:
        raise AssertionError("no exception")
xs = [3, 1, 2]
assert sort_in_place(xs) == [1, 2, 3] and xs == [3, 1, 2]  # arguments are copies
_fb.record(r[:2])
"""
    calls = ("f", "boom", "gen", "sort_in_place", "slow")
    outcome = sandbox.run(Program(SPLIT_CODE, tests, calls=calls))
    assert outcome.passed and outcome.mode == "split", outcome
    assert (outcome.calls, outcome.mutated) == (4, 1)
    assert wire.loads(outcome.records) == [[3, 1.5]]
    not_plain = sandbox.run(Program(SPLIT_CODE, "gen()\n", calls=calls))
    assert not_plain.status == "failed" and "not plain data: generator" in not_plain.reason
    assert not_plain.failed_test == "gen()"
    timed = sandbox.run(Program(SPLIT_CODE, "_fb.call('slow', timeout=0.5)\n", calls=calls), Limits(wall_s=10))
    assert timed.status == "failed" and "CallTimeout" in timed.reason and timed.duration_s < 5
    missing = sandbox.run(Program(SPLIT_CODE, "nothing()\n", calls=("nothing",)))
    assert "NameError" in missing.reason


@pytest.mark.timeout(60)
def test_split_helpers_and_tests_are_the_judges_own(sandbox: Sandbox) -> None:
    """The model's code redefines a helper and patches a module the tests use: the judge has its own."""
    code = "import math\nmath.fabs = lambda x: 0.0\ndef helper(x):\n    return 0\ndef f(x):\n    return 99\n"
    tests = "import math\nassert math.fabs(helper(f(1)) - 2) < 1e-9\n"
    outcome = sandbox.run(Program(code, tests, calls=("f",), helpers="def helper(x):\n    return x + 1\n"))
    assert outcome.status == "failed" and outcome.failed_test is not None


@pytest.mark.timeout(60)
def test_the_models_process_never_holds_the_tests(sandbox: Sandbox) -> None:
    """The fork server never reads a job's code or tests: in split mode the tests are nowhere in the memory of the
    model's process, not even those of an earlier job."""
    marker = "EXPECTED-" + "7f3a9c1e5b"
    xored = bytes(c ^ 1 for c in b"7f3a9c1e5b")  # the model's code never builds the marker itself
    code = f"""
import ctypes
found = 0
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
for fields in regions:
    lo, hi = (int(x, 16) for x in fields[0].split("-"))
    if not fields[1].startswith("r") or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
        continue
    data = ctypes.string_at(lo, hi - lo)
    at = data.find(b"EXPECTED-")
    while at >= 0:
        found += bytes(c ^ 1 for c in data[at + 9 : at + 19]) == {xored!r}
        at = data.find(b"EXPECTED-", at + 1)
print("LEAK" if found else "clean")
def f():
    return 1
"""
    tests = f"assert f() == 1, {marker!r}\n"
    one = Sandbox(workers=1)  # so that every job below goes through the same fork server
    assert one.run(Program(code, tests)).stdout.strip() == "LEAK"  # in-process, the tests are in its memory
    for _ in range(2):  # nor does any later split job inherit a copy from the server
        outcome = one.run(Program(code, tests, calls=("f",)), Limits(wall_s=30))
        assert outcome.passed, outcome
        assert outcome.stdout.strip() == "clean"
    one.close()


@pytest.mark.timeout(60)
def test_stdin_scripts_run_split(sandbox: Sandbox) -> None:
    code = "a, b = map(int, input().split())\nprint(a + b)\n"
    tests = "assert _fb.script('2 3\\n') == '5\\n'\nassert _fb.script('10 -4\\n').strip() == '6'\n"
    assert sandbox.run(Program(code, tests, calls=(), script=True)).passed
    broken = sandbox.run(Program("print(", tests, calls=(), script=True))
    assert broken.status == "failed" and "SyntaxError" in broken.reason


@pytest.mark.timeout(60)
def test_a_judge_stuck_in_its_tests_is_replaced() -> None:
    """A model's answer can make the tests loop (e.g. `range(f())` with a huge value): the wall-clock limit still
    holds, the stuck judge is killed with its slot's server, and the next split job gets a fresh one."""
    one = Sandbox(workers=1)
    stuck = one.run(
        Program("def f():\n    return 10**18\n", "for _ in range(f()):\n    pass\n", calls=("f",)), Limits(wall_s=1)
    )
    assert stuck.status == "timeout" and stuck.duration_s < 5
    again = one.run(Program("def f():\n    return 2\n", "assert f() == 2\n", calls=("f",)))
    assert again.passed, again
    one.close()


@pytest.mark.timeout(60)
def test_a_value_too_large_for_the_channel_fails_fast(sandbox: Sandbox) -> None:
    code = "def f():\n    return list(range(10_000_000))\n"
    outcome = sandbox.run(Program(code, "f()\n", calls=("f",)), Limits(wall_s=30))
    assert outcome.status == "failed" and "too large for the channel" in outcome.reason
    assert outcome.duration_s < 15
