"""`gate`, `history` and `tag` on hand-built stored runs: verdicts, exit codes 0/1/2, step order."""

from __future__ import annotations

import json

import pytest
from test_compare_support import add_run, binary

from fusebench.errors import UsageError
from fusebench.history import gate, history, set_tags
from fusebench.scale import RATING_10, Scale
from fusebench.store import Store

pytest_plugins = ["test_compare_support"]  # the store and cli fixtures


@pytest.fixture
def gated(store: Store) -> Store:
    # baseline right on 0-59 of 100 gsm8k items and 0-19 of 40 amc23 items.
    add_run(store, "base", "org/base", {"gsm8k": binary(100, range(60)), "amc23": binary(40, range(20))})
    # big significant drop on gsm8k: loses 20 items, gains none (McNemar p = 2^-19)
    add_run(store, "bad", "org/bad", {"gsm8k": binary(100, range(40)), "amc23": binary(40, range(20))})
    # small drop: loses 1 item of 100 (1 point, not significant)
    add_run(store, "ok", "org/ok", {"gsm8k": binary(100, range(59)), "amc23": binary(40, range(1, 21))})
    add_run(store, "partial", "org/partial", {"gsm8k": binary(100, range(60))})
    return store


def test_gate_fails_on_significant_drop(gated: Store) -> None:
    result = gate(gated, "bad", "base", max_drop=1.0)
    assert not result.passed
    [failure] = result.failures
    assert failure.benchmark == "gsm8k"
    d = failure.row.deltas[0]
    assert d is not None and d.delta.estimate == pytest.approx(-20.0)
    assert d.p == pytest.approx(2 / 2**20) and d.p_holm == pytest.approx(2 * 2 / 2**20)  # Holm over 2 benchmarks


def test_gate_reads_each_benchmarks_stored_scale_not_its_name(store: Store) -> None:
    """A 1-10 rated benchmark no code knows by name (a team's own judged benchmark): a 0.6 drop in rating is 6
    points, so a 3-point allowance fails it and a 7-point one passes. A lower-is-better score that rises drops."""
    base = [float(3 + i % 7) for i in range(60)]
    worse = [max(1.0, r - (0.5 if i % 5 else 1.0)) for i, r in enumerate(base)]  # mean drop 0.6
    errors = [0.0] * 40 + [1.0] * 20
    more_errors = [0.0] * 20 + [1.0] * 40
    lower = Scale(100.0, 100.0, higher_is_better=False)
    scales = {"house_rating": RATING_10, "error_rate": lower}
    add_run(store, "base", "org/base", {"house_rating": base, "error_rate": errors}, scales=scales)
    add_run(store, "cand", "org/cand", {"house_rating": worse, "error_rate": errors}, scales=scales)
    add_run(store, "erring", "org/erring", {"house_rating": base, "error_rate": more_errors}, scales=scales)
    (failure,) = gate(store, "cand", "base", max_drop=3.0).failures
    assert failure.benchmark == "house_rating" and failure.reason.startswith("dropped 6.00 points")
    assert gate(store, "cand", "base", max_drop=7.0).passed
    (failure,) = gate(store, "erring", "base", max_drop=1.0).failures
    assert failure.benchmark == "error_rate" and failure.reason.startswith("dropped 33.33 points")
    assert gate(store, "base", "erring", max_drop=1.0).passed  # fewer errors: a gain, not a drop


def test_gate_tolerates_drops_below_max_drop_or_not_significant(gated: Store) -> None:
    assert gate(gated, "ok", "base", max_drop=1.0).passed
    assert gate(gated, "bad", "base", max_drop=25.0).passed  # -20 is within a 25-point allowance


def test_gate_missing_benchmark_fails_unless_excluded(gated: Store) -> None:
    result = gate(gated, "partial", "base")
    assert [(f.benchmark, f.reason) for f in result.failures] == [("amc23", "missing in the candidate")]
    assert gate(gated, "partial", "base", benchmarks=["gsm8k"]).passed


def test_gate_bad_input(gated: Store) -> None:
    with pytest.raises(UsageError, match="max-drop"):
        gate(gated, "ok", "base", max_drop=-1)
    with pytest.raises(UsageError, match="no run id starts with"):
        gate(gated, "ok", "nothere")


def test_gate_exit_codes(cli, gated: Store) -> None:
    code, out, _ = cli("gate", "ok", "--baseline", "base")
    assert code == 0 and out.startswith("gate PASS")
    code, out, _ = cli("gate", "org/bad", "--baseline", "org/base", "--max-drop", "1")
    assert code == 1 and "gate FAIL (1 benchmark(s))" in out
    assert "gsm8k" in out and "-20.00" in out and "dropped 20.00 points" in out
    code, _, err = cli("gate", "ok", "--baseline", "nothere")
    assert code == 2 and "nothere" in err
    code, _, err = cli("gate", "ok", "--baseline", "base", "--benchmarks", "mbpp")
    assert code == 2 and "mbpp" in err
    code, out, _ = cli("gate", "bad", "--baseline", "base", "--format", "json")
    assert code == 1 and json.loads(out)["failures"][0]["benchmark"] == "gsm8k"


def test_history_sorted_by_numeric_step(store: Store) -> None:
    for run_id, step, right in [("s100", "100", 7), ("s20", "20", 5), ("s3", "3", 2), ("s20b", "20", 6)]:
        add_run(store, run_id, "ckpt", {"gsm8k": binary(10, range(right))}, tags={"family": "fam", "step": step})
    add_run(store, "other", "x", {"gsm8k": [1.0]}, tags={"family": "else", "step": "1"})
    add_run(store, "broken", "x", {"gsm8k": [1.0]}, tags={"family": "fam", "step": "50"}, status="failed")
    h = history(store, "fam")
    assert h.steps == ("3", "20", "100")
    assert h.run_ids == ("s3", "s20b", "s100")  # the latest run of step 20 wins; failed runs are skipped
    assert h.rows == (("math", "gsm8k", (20.0, 60.0, 70.0)),)
    with pytest.raises(UsageError, match="family=nobody"):
        history(store, "nobody")


def test_tag_then_history_cli(cli, store: Store) -> None:
    add_run(store, "r1", "m1", {"gsm8k": binary(4, {0})})
    add_run(store, "r2", "m2", {"gsm8k": binary(4, {0, 1}), "amc23": [1.0]})
    assert cli("tag", "r1", "family=f", "step=10") == (0, "family=f, step=10\n", "")
    assert set_tags(store, "r2", {"family": "f", "step": "9", "tmp": "x"}, remove=["tmp"]) == {
        "family": "f",
        "step": "9",
    }
    code, out, _ = cli("history", "f")
    assert code == 0
    header, _, line_amc, line_gsm, avg = out.splitlines()[:5]
    assert header.split()[-4:] == ["step", "9", "step", "10"]
    assert line_gsm.split()[-2:] == ["50.00", "25.00"] and line_amc.split()[-2:] == ["100.00", "missing"]
    assert avg.split()[-2:] == ["50.00", "25.00"]  # over gsm8k, the one benchmark both steps have
    code, _, err = cli("tag", "r1", "novalue")
    assert code == 2 and "key=value" in err


def test_gate_says_where_it_could_estimate_no_interval(store: Store, cli) -> None:
    add_run(store, "b3", "org/base", {"gsm8k": [0.0, 0.0, 0.0], "amc23": binary(40, range(20))})
    add_run(store, "c3", "org/cand", {"gsm8k": [0.0, 0.0, 0.0], "amc23": binary(40, range(20))})
    code, out, _ = cli("gate", "c3", "--baseline", "b3")
    assert code == 0 and "gate PASS" in out
    assert "No 95% CI or MDE could be estimated for: gsm8k (no variation)" in out and "amc23 (" not in out


SAMPLED = {"max_new_tokens": 2048, "temperature": 0.7, "top_p": 1.0, "n": 1, "stop": [], "seed": 0}


@pytest.fixture
def family(store: Store) -> Store:
    """Steps 100, 200, 300 of family fam, greedy on gsm8k and amc23; at step 200 a newer run sampled at temperature
    0.7 on gsm8k only (an experiment tagged with the same step), which must not displace the comparable run."""
    fam = {"family": "fam"}
    add_run(store, "s100", "ckpt", {"gsm8k": binary(20, range(8)), "amc23": [1.0, 0.0]}, tags={**fam, "step": "100"})
    add_run(store, "s200", "ckpt", {"gsm8k": binary(20, range(10)), "amc23": [1.0, 1.0]}, tags={**fam, "step": "200"})
    add_run(store, "s300", "ckpt", {"gsm8k": binary(20, range(12)), "amc23": [1.0, 1.0]}, tags={**fam, "step": "300"})
    add_run(store, "s200hot", "ckpt", {"gsm8k": binary(20, range(2))}, tags={**fam, "step": "200"}, generation=SAMPLED)
    return store


def test_history_takes_per_step_the_run_matching_the_familys_settings(family: Store) -> None:
    h = history(family, "fam")
    assert h.run_ids == ("s100", "s200", "s300")  # not the newest run of step 200
    assert h.rows == (("math", "amc23", (50.0, 100.0, 100.0)), ("math", "gsm8k", (40.0, 50.0, 60.0)))
    assert h.flags == ()  # the shown runs are like with like
    [note] = h.notes
    assert note.startswith("step 200: shows run s200 (closest to the family's settings); passed over s200hot")
    assert "settings differ from the family's on gsm8k" in note


def test_history_shows_a_named_run_with_compares_settings_warning(family: Store, cli) -> None:
    h = history(family, "fam", named=["s200hot"])
    assert h.run_ids == ("s100", "s200hot", "s300")
    assert h.rows[1] == ("math", "gsm8k", (40.0, 10.0, 60.0))
    assert "gsm8k: generation params differ (temperature 0.0 vs 0.7) [step 100 (s100) vs step 200 (s200hot)]" in (
        h.flags
    )
    assert "amc23: missing in step 200 (s200hot)" in h.flags  # compare's words for the same pair
    code, out, _ = cli("history", "fam", "--run", "s200hot")
    assert code == 0 and "Settings that differ (treat those steps with care):" in out
    assert "! gsm8k: generation params differ (temperature 0.0 vs 0.7)" in out and "s200hot (named)" in out
    code, out, _ = cli("history", "fam", "--format", "markdown")
    assert code == 0 and "- step 200: shows run s200" in out and "Settings that differ" not in out
    assert cli("history", "fam", "--run", "s200", "--run", "s200hot")[0] == 2  # two runs for one step
    add_run(family, "stray", "x", {"gsm8k": [1.0]}, tags={"family": "else", "step": "1"})
    code, _, err = cli("history", "fam", "--run", "stray")
    assert code == 2 and "not a complete run tagged family=fam" in err


def test_history_warns_when_the_only_run_of_a_step_differs(store: Store) -> None:
    fam = {"family": "f"}
    add_run(store, "a", "ckpt", {"gsm8k": binary(10, range(3))}, tags={**fam, "step": "1"})
    add_run(store, "b", "ckpt", {"gsm8k": binary(10, range(4))}, tags={**fam, "step": "2"}, generation=SAMPLED)
    add_run(store, "c", "ckpt", {"gsm8k": binary(12, range(5))}, tags={**fam, "step": "3"})
    h = history(store, "f")
    assert h.run_ids == ("a", "b", "c") and h.notes == ()
    assert any(f.startswith("gsm8k: generation params differ (temperature 0.0 vs 0.7)") for f in h.flags)
    assert any("item sets differ: n 10 vs 12" in f and "[step 1 (a) vs step 3 (c)]" in f for f in h.flags)
