"""marketsim_opt.reports.oos_stats on synthetic oos rows whose answer is known."""

from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import replace

import numpy as np
import pytest

from marketsim_opt.files import OutputError
from marketsim_opt.oos import OosRow, read_oos_csv, write_oos_csv
from marketsim_opt.reports import oos_stats as st
from marketsim_opt.reports.extras import MissingExtraError

N = 70
REPS = 400
FIRST = dt.date(2024, 1, 1)


def make_row(
    series: str,
    sim: int,
    test_date: str,
    strategy: str,
    method: str,
    budget: str,
    regret_bp: float,
    next_day_profit: float,
) -> OosRow:
    """An `OosRow` with the fields the statistics read; the others hold plausible constants."""
    return OosRow(
        series=series,
        sim=sim,
        fit_first_date="2023-12-01",
        fit_last_date="2023-12-08",
        test_date=test_date,
        strategy=strategy,
        method=method,
        budget=budget,
        h=0.0,
        l=0.0,
        close_at_eod=False,
        fee=0.0005,
        in_sample_profit=0.01,
        regret_bp=regret_bp,
        test_close=0.001,
        test_high=0.01,
        test_low=-0.01,
        test_high_pred=0.008,
        test_low_pred=-0.007,
        test_positions="1",
        next_day_profit=next_day_profit,
    )


def ar1(seed: int, n: int = N, phi: float = 0.5, sd_bp: float = 10.0) -> np.ndarray:
    """An autocorrelated daily profit series, fraction of the previous close, `[n]`."""
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal()
    return x * sd_bp / 1e4


def rows_for(profits: dict[tuple[str, str], np.ndarray], *, series: str = "synthetic") -> list[OosRow]:
    """Rows for `{(method, budget): profit [N] in test-date order}` on strategy `entry_exit`.

    Sim k tests on the k-th last day, so test-date order is sim descending, as in a real walk-forward.
    """
    out = []
    for (method, budget), profit in profits.items():
        n = len(profit)
        for i, p in enumerate(profit):
            sim = n - 1 - i
            regret = 0.0 if method == "exact" else 3.0 + i % 5
            date = (FIRST + dt.timedelta(days=i)).isoformat()
            out.append(make_row(series, sim, date, "entry_exit", method, budget, regret, float(p)))
    return out


def standard(margin_bp: float = 0.0, seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """direct@default, zero, exact and direct@100; `good` beats direct by `margin_bp`, `bad` loses it."""
    base = ar1(seed)
    out = {
        ("direct", "500 (default)"): base,
        ("zero", "-"): base + ar1(seed + 1, sd_bp=2.0),
        ("exact", "-"): base + ar1(seed + 2, sd_bp=2.0),
        ("direct", "100"): base + ar1(seed + 3, sd_bp=2.0),
    }
    if margin_bp:
        out[("good", "100")] = base + margin_bp / 1e4 + ar1(seed + 4, sd_bp=2.0)
        out[("bad", "100")] = base - margin_bp / 1e4 + ar1(seed + 5, sd_bp=2.0)
    return out


def by_label(diffs: list[st.Difference]) -> dict[str, st.Difference]:
    return {d.label: d for d in diffs}


def test_paired_series_labels_bp_and_time_order() -> None:
    profits = standard()
    rows = rows_for(profits)[::-1]  # any input order
    series = st.paired_series(rows)
    assert set(series) == {
        ("entry_exit", "direct@default"),
        ("entry_exit", "zero"),
        ("entry_exit", "exact"),
        ("entry_exit", "direct@100"),
    }
    # test-date ascending (= sim descending) and in bp
    np.testing.assert_allclose(series[("entry_exit", "direct@default")], profits[("direct", "500 (default)")] * 1e4)
    np.testing.assert_allclose(series[("entry_exit", "zero")], profits[("zero", "-")] * 1e4)


def test_missing_sims_are_named() -> None:
    rows = [r for r in rows_for(standard()) if not (r.method == "exact" and r.sim in (3, 17))]
    with pytest.raises(ValueError, match=r"exact lacks sims 3, 17"):
        st.paired_series(rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows + [rows[0]], "twice"),
        (lambda rows: rows + rows_for({("zero", "-"): ar1(9)}, series="other"), "2 series"),
        (lambda rows: [], "none given"),
        (lambda rows: rows[:-1] + [replace(rows[-1], next_day_profit=float("nan"))], "is nan"),
        (lambda rows: rows[:-1] + [replace(rows[-1], test_date="1999-01-01")], "two test dates"),
    ],
)
def test_bad_rows_raise(change, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        st.paired_series(change(rows_for(standard())))


def test_seeded_intervals_repeat_and_do_not_depend_on_other_labels() -> None:
    series = st.paired_series(rows_for(standard()))
    a = st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS, seed=3)
    b = st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS, seed=3)
    assert a == b
    c = st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS, seed=4)
    assert [(d.low_bp, d.high_bp) for d in a] != [(d.low_bp, d.high_bp) for d in c]
    fewer = {k: v for k, v in series.items() if k[1] != "exact"}
    assert (
        by_label(st.differences(fewer, benchmark=st.DIRECT_DEFAULT, reps=REPS, seed=3))["zero"] == by_label(a)["zero"]
    )


def test_a_large_margin_is_found_and_the_bad_label_leaves_the_mcs() -> None:
    series = st.paired_series(rows_for(standard(margin_bp=5.0)))
    diffs = by_label(st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS))
    good, bad = diffs["good@100"], diffs["bad@100"]
    assert good.low_bp > 0 and not good.contains_zero
    assert bad.high_bp < 0 and not bad.contains_zero
    assert good.low_bp < good.mean_bp < good.high_bp
    assert good.mean_bp == pytest.approx(5.0, abs=1.5)
    assert good.sims_needed is not None and good.sims_needed < N
    assert good.block >= 1
    (result,) = st.mcs(series, reps=REPS)
    assert "good@100" in result.included
    assert "bad@100" not in result.included
    assert result.pvalues["bad@100"] <= result.size
    (test,) = st.spa(series, reps=REPS)
    assert test.p_consistent < 0.05
    assert set(test.models) == {"zero", "exact", "direct@100", "good@100", "bad@100"}


def test_identical_series_cannot_be_told_apart() -> None:
    base = ar1(0)
    series = st.paired_series(rows_for({("direct", "500 (default)"): base, ("exact", "-"): base, ("zero", "-"): base}))
    diffs = st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS)
    assert all(d.contains_zero and d.mean_bp == 0.0 and d.sims_needed is None for d in diffs)
    (test,) = st.spa(series, reps=REPS)
    assert test.models == () and set(test.equal) == {"exact", "zero"}
    assert test.p_consistent == 1.0
    (result,) = st.mcs(series, reps=REPS)
    assert set(result.included) == {"direct@default", "exact", "zero"}


def test_same_distribution_gives_a_large_spa_p_value() -> None:
    series = st.paired_series(rows_for(standard()))
    (test,) = st.spa(series, reps=REPS)
    assert test.p_lower <= test.p_consistent <= test.p_upper
    assert test.p_consistent > 0.2
    diffs = st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS)
    assert all(d.contains_zero for d in diffs)
    # a label that only loses to the benchmark by a constant is never a candidate to beat it
    shifted = dict(series)
    shifted[("entry_exit", "worse")] = series[("entry_exit", "direct@default")] - 1.0
    (test,) = st.spa(shifted, reps=REPS)
    assert "worse" in test.equal and "worse" not in test.models


def test_mcs_treats_identical_labels_as_one_model() -> None:
    profits = standard(margin_bp=5.0)
    profits[("direct", "240")] = profits[("direct", "500 (default)")]
    (result,) = st.mcs(st.paired_series(rows_for(profits)), reps=REPS)
    assert result.pvalues["direct@240"] == result.pvalues["direct@default"]
    assert list(result.pvalues) == [
        "direct@default",
        "zero",
        "exact",
        "direct@100",
        "good@100",
        "bad@100",
        "direct@240",
    ]


def test_sims_needed_scales_with_the_standard_error() -> None:
    d = st.Difference(
        "s", "x", "direct@default", n=70, mean_bp=1.0, low_bp=-1.0, high_bp=3.0, se_bp=1.0, block=2, reps=9
    )
    assert d.contains_zero
    assert d.sims_needed == int(np.ceil(70 * 1.959963984540054**2))  # 269
    assert st.Difference("s", "x", "z", 70, 0.0, -1.0, 1.0, 0.5, 1, 9).sims_needed is None


def test_missing_benchmark_is_refused_or_noted() -> None:
    series = st.paired_series(rows_for({("exact", "-"): ar1(0), ("zero", "-"): ar1(1)}))
    with pytest.raises(ValueError, match=r"no label 'direct@default'.*labels: exact, zero"):
        st.differences(series, benchmark=st.DIRECT_DEFAULT, reps=REPS)
    stats = st.compute_stats(rows_for({("exact", "-"): ar1(0), ("zero", "-"): ar1(1)}), reps=REPS)
    assert stats.against_direct == [] and stats.spa == []
    assert [d.label for d in stats.against_zero] == ["exact"]
    assert [d.label for d in stats.against_exact] == ["zero"]
    assert any("direct@default" in n for n in stats.notes)
    table = st.to_markdown(stats)
    assert "n/a" in table
    # The exact column: exact's own cell is the benchmark, zero's the interval of zero - exact.
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    exact_row = next(row for row in rows if row[0] == "`exact`")  # the first table
    assert exact_row[-2] == "0 (benchmark)"
    zero_row = next(row for row in rows if row[0] == "`zero`")
    (against,) = stats.against_exact
    assert f"{against.mean_bp:+.2f} [{against.low_bp:+.2f}, {against.high_bp:+.2f}]" in zero_row[-2]


def test_bad_arguments_are_named() -> None:
    series = st.paired_series(rows_for(standard()))
    with pytest.raises(ValueError, match="reps"):
        st.differences(series, benchmark=st.ZERO, reps=1)
    with pytest.raises(ValueError, match="block"):
        st.differences(series, benchmark=st.ZERO, block=0)
    with pytest.raises(ValueError, match="size"):
        st.mcs(series, size=1.5)


def test_write_stats_writes_the_table_and_the_plot(tmp_path) -> None:
    rows = rows_for(standard(margin_bp=5.0))
    paths = st.write_stats(rows, tmp_path, reps=REPS)
    assert [p.name for p in paths] == ["oos-stats.md", "oos-stats.png", "oos-stats.svg"]
    md = paths[0].read_text()
    assert md.splitlines()[0] == st.MD_TITLE
    assert f"{N} simulations" in md
    assert re.search(r"^\| `good@100` +\|", md, re.MULTILINE) and "**+" in md  # its interval excludes 0: bold
    assert "SPA (Hansen)" in md and "Model confidence set at 10%" in md
    assert "sims for 5 %" in md and "~" in md  # an estimate for a label that the data cannot tell apart
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[2].read_text()
    # the same call again replaces its own files; a foreign oos-stats.md is refused
    st.write_stats(rows, tmp_path, reps=REPS)
    paths[0].write_text("my notes\n")
    with pytest.raises(OutputError, match="oos-stats.md"):
        st.write_stats(rows, tmp_path, reps=REPS)
    assert paths[0].read_text() == "my notes\n"
    with pytest.raises(OutputError, match="not an existing folder"):
        st.write_stats(rows, tmp_path / "absent", reps=REPS)


def test_missing_arch_names_the_oos_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "arch", None)
    series = st.paired_series(rows_for(standard()))
    with pytest.raises(
        MissingExtraError, match=r"arch \(the oos extra\).*pip install -c constraints.txt -e '.\[oos\]'"
    ):
        st.differences(series, benchmark=st.ZERO, reps=REPS)


def test_rows_read_back_from_oos_csv_give_the_same_statistics(tmp_path) -> None:
    rows = rows_for(standard(margin_bp=5.0))
    rows += [replace(r, strategy="always_on") for r in rows]
    write_oos_csv(rows, tmp_path / "oos.csv")
    again = read_oos_csv(tmp_path / "oos.csv")
    assert st.compute_stats(again, reps=REPS) == st.compute_stats(rows, reps=REPS)
    stats = st.compute_stats(again, reps=REPS)
    assert stats.n_sims == {"entry_exit": N, "always_on": N}
    assert stats.dates["always_on"] == ("2024-01-01", "2024-03-10")
    assert stats.means[("entry_exit", "exact")][0] == 0.0


def test_a_short_record_bootstraps_with_blocks_of_one():
    """Below MIN_BLOCK_ESTIMATE simulations the block length is 1 (arch cannot estimate it there), not an error."""
    rng = np.random.default_rng(3)
    n = st.MIN_BLOCK_ESTIMATE - 3
    series = {("entry_exit", "direct@default"): rng.normal(size=n), ("entry_exit", "zero"): rng.normal(size=n)}
    (diff,) = st.differences(series, benchmark="direct@default", reps=200, seed=0)
    assert diff.block == 1 and diff.n == n and diff.low_bp <= diff.mean_bp <= diff.high_bp
