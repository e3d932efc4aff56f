"""The sandbox's contract: verdicts, captured output, limits, parallelism, clean-up."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.sandbox import Limits, Program, Sandbox, scaled_timeout


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
def test_scratch_dir_is_writable_then_deleted(sandbox: Sandbox) -> None:
    code = "import os\nopen('f.txt', 'w').write('hi')\nprint(os.getcwd())\n"
    outcome = sandbox.run(Program(code, "assert open('f.txt').read() == 'hi'\n"))
    assert outcome.passed, outcome
    assert not Path(outcome.stdout.strip()).exists()


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
