"""The HTML report: self-contained, escapes model text, and its sample filters work in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_compare_support import add_run, binary

from fusebench.report.html import write_report
from fusebench.store import Store

pytest_plugins = ["test_compare_support"]  # the store and cli fixtures

EVIL = '</script><script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _outputs(run_id: str, sid: str, j: int) -> str:
    return EVIL if sid == "gsm8k-1" else f"{run_id} reasoning for {sid}"


@pytest.fixture
def report(store: Store, tmp_path: Path) -> Path:
    tags = {"family": "fam"}
    add_run(
        store,
        "r1",
        "org/base",
        {"gsm8k": binary(10, range(5)), "amc23": binary(4, {0})},
        tags={**tags, "step": "100"},
        outputs=_outputs,
    )
    add_run(
        store,
        "r2",
        "org/<b>new</b>",
        {"gsm8k": binary(10, range(2, 9)), "amc23": binary(4, {0, 1})},
        tags={**tags, "step": "200"},
        outputs=_outputs,
    )
    return write_report(store, ["r1", "r2"], tmp_path / "out" / "report.html")


class _Scan(HTMLParser):
    """Collects tags, external references and script bodies of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "script":
            self._script = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None


def test_report_is_self_contained_and_escaped(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    scan = _Scan()
    scan.feed(page)
    assert scan.refs == []  # nothing loaded from elsewhere
    assert "img" not in scan.tags  # the model's <img onerror> stayed text
    assert scan.tags.count("script") == 2  # the JSON data and the page script, nothing injected
    assert "<b>new</b>" not in page and "org/&lt;b&gt;new&lt;/b&gt;" in page
    assert scan.tags.count("svg") == 2  # delta chart and history chart
    data = next(json.loads(body) for attrs, body in scan.scripts if attrs.get("id") == "samples")
    evil = next(i for i in data["items"] if i["id"] == "gsm8k-1")
    assert evil["runs"][0]["output"] == EVIL  # the text survives intact, as data
    flipped = sorted(i["id"] for i in data["items"] if i["flipped"])
    assert flipped == ["amc23-1", "gsm8k-0", "gsm8k-1", "gsm8k-5", "gsm8k-6", "gsm8k-7", "gsm8k-8"]
    assert ">+20.00<" in page  # the gsm8k delta in the table: 70 - 50


def test_report_without_family_has_no_history_chart(store: Store, tmp_path: Path) -> None:
    add_run(store, "a", "A", {"gsm8k": [1.0, 0.0]})
    add_run(store, "b", "B", {"gsm8k": [1.0, 1.0]})
    page = write_report(store, ["a", "b"], tmp_path / "r.html").read_text()
    assert page.count("<svg") == 1 and "History of family" not in page


def test_report_cli(cli, store: Store, tmp_path: Path) -> None:
    add_run(store, "a", "A", {"gsm8k": [1.0, 0.0]})
    add_run(store, "b", "B", {"gsm8k": [1.0, 1.0]})
    out = tmp_path / "rep.html"
    code, text, _ = cli("report", "a", "b", "-o", str(out))
    assert code == 0 and out.exists() and str(out) in text


def _dump_dom(page: Path, fragment: str) -> tuple[str, str]:
    assert CHROMIUM
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def _rows(dom: str) -> list[str]:
    body = re.search(r'<tbody id="sample-body">(.*?)</tbody>', dom, re.S)
    assert body, "sample table missing"
    return re.findall(r'<tr data-benchmark="([^"]+)"', body.group(1))


@pytest.mark.browser
@pytest.mark.timeout(180)
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_filters_in_headless_chromium(report: Path) -> None:
    dom, log = _dump_dom(report, "")
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert console == [], console  # no console errors or warnings from the page
    assert 'data-ready="1"' in dom  # the script ran to the end
    assert len(_rows(dom)) == 14 and "14 of 14 items" in dom
    assert "pwned" not in dom.split("<body", 1)[0]  # title untouched: nothing injected ran
    assert "&lt;img src=x" in dom  # the output shows as text inside the page
    dom, _ = _dump_dom(report, "#benchmark=gsm8k&show=flipped")
    assert _rows(dom) == ["gsm8k"] * 6 and "6 of 14 items" in dom
    dom, _ = _dump_dom(report, "#q=r2%20reasoning%20for%20amc23-3")
    assert _rows(dom) == ["amc23"] and "1 of 14 items" in dom


def test_report_shows_no_interval_where_none_can_be_estimated(store: Store, tmp_path: Path) -> None:
    add_run(store, "h1", "org/one", {"mt_bench": [8.0, 8.0, 8.0], "gsm8k": binary(10, range(5))})
    add_run(store, "h2", "org/two", {"mt_bench": [9.0, 9.0, 9.0], "gsm8k": binary(10, range(3, 9))})
    page = write_report(store, ["h1", "h2"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "n/a (no variation)" in page  # the table's CI cell for mt_bench (every rating moved by exactly +1)
    assert "CI n/a (no variation)" in page  # the chart: an open dot with the reason, no bar
    assert "nan" not in page.lower().replace("nano", "")


def test_report_history_shows_the_compared_runs(store: Store, tmp_path: Path) -> None:
    fam = {"family": "fam"}
    add_run(store, "p1", "ckpt", {"gsm8k": binary(10, range(3))}, tags={**fam, "step": "1"})
    add_run(store, "p2", "ckpt", {"gsm8k": binary(10, range(6))}, tags={**fam, "step": "2"})
    # a newer step-2 run at another temperature: the history chart used to plot it beside a comparison of p1, p2
    hot = {"max_new_tokens": 2048, "temperature": 0.7, "top_p": 1.0, "n": 1, "stop": [], "seed": 0}
    add_run(store, "p2hot", "ckpt", {"gsm8k": binary(10, range(1))}, tags={**fam, "step": "2"}, generation=hot)
    page = write_report(store, ["p1", "p2"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "step 2: shows run p2 (named); passed over p2hot (newer, not named)" in page
    assert page.count("<svg") == 2
