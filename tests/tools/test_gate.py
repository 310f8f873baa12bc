"""The regression gate (tools/gate.py), proven with planted regressions on throwaway commits.

A temporary clone of this repository gets one commit per planted change, each on top of the clean BASE; the
gate then judges them through asv in managed environments (reused between runs through the repository's
`.asv/env`).  The deterministic plants (one asv run over all of them) and the instruction-count plants (the
kernel run twice, judged on callgrind's counts alone; they need valgrind) run in CI (`.ci/run`); the timing
plants are marked `timing` and run in `nox -s gate-tests`.  All of them are `slow`.

Three plants prove that the ruler is the harness's, not the package's (benchmarks/ruler): DIRECT scoring each
candidate twice is caught on the evaluations and read-backs the harness counts; the exact solver reporting a
supremum 1 bp low is caught on its regret against the frozen reference, and does not make every other method's
regret look 1 bp better; the package dropping `item` from its own read-back list changes no host-sync count.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATE = REPO / "tools" / "gate.py"
ENV_DIR = REPO / ".asv" / "env"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
    pytest.mark.skipif(importlib.util.find_spec("asv") is None, reason="needs asv (the bench extra)"),
]


def load_gate():
    spec = importlib.util.spec_from_file_location("tools_gate", GATE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gate = load_gate()

#: file -> (text to find, replacement): each plant is one commit on top of BASE.
PLANTS = {
    "aa": ("README.md", "# marketsim-opt\n", "# marketsim-opt\n\n<!-- A/A: the same code -->\n"),
    "extra_readback": (
        "marketsim_opt/strategies.py",
        "                return self._sum(days, self.legs, h, l, raw_profit_per_day, True)",
        "                self._sum(days, self.legs, h, l, raw_profit_per_day, True).sum().item()\n"
        "                return self._sum(days, self.legs, h, l, raw_profit_per_day, True)",
    ),
    "budget_halved": (
        "marketsim_opt/optimizers/api.py",
        '_HISTORIC_BUDGETS = {"entry_exit": 500,',
        '_HISTORIC_BUDGETS = {"entry_exit": 250,',
    ),
    "big_allocation": (
        "marketsim_opt/strategies.py",
        "            record_evaluations(h.numel())\n",
        "            record_evaluations(h.numel())\n            torch.ones(64 * 2**20, dtype=torch.uint8).sum()\n",
    ),
    "python_loop": (
        "marketsim_opt/strategies.py",
        "        return self._sum(days, legs, h, l, kernel, False, policy)\n",
        "        cols = [self._sum(days, legs, h[:, k : k + 1], l[:, k : k + 1], kernel, False, _columns(policy, k, 1))"
        " for k in range(h.shape[1])]\n"
        "        return torch.cat(cols, dim=-1)\n",
    ),
    "kernel_2x": (
        "marketsim_opt/kernel.py",
        '    """`profit_per_day` without the input checks: the hot path for already-validated problems."""\n',
        '    """`profit_per_day` without the input checks: the hot path for already-validated problems."""\n'
        "    _raw_profit_per_day(close, high, high_pred, low, low_pred, positions, close_at_eod=close_at_eod,"
        " trading_fee=trading_fee)\n"
        "    return _raw_profit_per_day(close, high, high_pred, low, low_pred, positions, close_at_eod=close_at_eod,"
        " trading_fee=trading_fee)\n\n\ndef _raw_profit_per_day(close, high, high_pred, low, low_pred, positions, *,"
        " close_at_eod=False, trading_fee=0.0005):\n",
    ),
    "direct_twice": (
        "marketsim_opt/optimizers/direct.py",
        "    return lambda x: -read_item(objective.score(x[0], x[1]))\n",
        "    return lambda x: (read_item(objective.score(x[0], x[1])), -read_item(objective.score(x[0], x[1])))[1]\n",
    ),
    "exact_low": (
        "marketsim_opt/optimizers/exact.py",
        "        Solution(h_i, l_i, profit[:, i], np.full(s, scored + 1), supremum)\n",
        "        Solution(h_i, l_i + 1e-4, profit[:, i] - 1e-4, np.full(s, scored + 1), supremum - 1e-4)\n",
    ),
    "item_unlisted": ("marketsim_opt/instrument.py", '    "item",\n', ""),
    "broken_import": (
        "marketsim_opt/__init__.py",
        "from .data import DataError, Problem\n",
        "raise ImportError('planted: this commit cannot be imported')\nfrom .data import DataError, Problem\n",
    ),
}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A clone of HEAD with one commit per plant, each on top of BASE; `{name: sha}` with `base`."""
    clone = tmp_path_factory.mktemp("gate") / "repo"
    git("clone", "-q", str(REPO), str(clone), cwd=REPO)
    git("config", "user.email", "gate@test", cwd=clone)
    git("config", "user.name", "gate test", cwd=clone)
    base = git("rev-parse", "HEAD", cwd=clone)
    shas = {"base": base}
    for name, (path, old, new) in PLANTS.items():
        git("checkout", "-q", "-B", f"plant-{name}", base, cwd=clone)
        file = clone / path
        text = file.read_text()
        assert text.count(old) == 1, f"plant {name}: the text to replace is not in {path} exactly once"
        file.write_text(text.replace(old, new))
        git("commit", "-q", "-am", f"plant: {name}", cwd=clone)
        shas[name] = git("rev-parse", "HEAD", cwd=clone)
    git("checkout", "-q", base, cwd=clone)
    return clone, shas


DETERMINISTIC_PLANTS = (
    "aa",
    "extra_readback",
    "budget_halved",
    "big_allocation",
    "direct_twice",
    "exact_low",
    "item_unlisted",
)


@pytest.fixture(scope="module")
def deterministic_results(planted, tmp_path_factory) -> Path:
    """One asv run of the default (deterministic + memory) benchmarks over BASE and the deterministic plants."""
    clone, shas = planted
    commits = [shas[n] for n in ("base", *DETERMINISTIC_PLANTS)]
    work = tmp_path_factory.mktemp("gate-work")
    start = time.perf_counter()
    results = gate.run_asv(clone, commits, work, bench=gate.DEFAULT_BENCH, timings=False, env_dir=ENV_DIR)
    print(f"deterministic asv run over {len(commits)} commits: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return results


@pytest.fixture(scope="module")
def instruction_results(planted, tmp_path_factory) -> Path:
    """One asv run of the instruction-count tier (one valgrind run per commit) over BASE, A/A and kernel_2x."""
    if missing := gate.missing_instruction_tools():
        pytest.skip(f"instruction counts need valgrind ({', '.join(missing)} not on PATH)")
    clone, shas = planted
    commits = [shas[n] for n in ("base", "aa", "kernel_2x")]
    work = tmp_path_factory.mktemp("gate-instructions")
    return gate.run_asv(
        clone, commits, work, bench=gate.INSTRUCTION_BENCH, timings=False, env_dir=ENV_DIR, instructions=True
    )


def unpadded(text: str) -> str:
    """`text` with the table's column padding (tabulate's) squeezed to one space, as the assertions spell rows."""
    return re.sub(r"(?<=\|) {2,}| {2,}(?=\|)", " ", text)


def verdicts(results: Path, base: str, head: str, *, bench: str = gate.DEFAULT_BENCH, instructions: bool = False):
    """The gate's rows, exit code and table (unpadded) for BASE against HEAD, judged set from `bench` as `main`
    does."""
    changes = gate.judge_results(results, base, head, [bench], timings=False, instructions=instructions)
    return changes, gate.exit_code(changes), unpadded(gate.to_markdown(changes, base, head))


def metric(benchmark: str) -> str:
    """`track_host_syncs` of `optimizers.OptimizerMetrics.track_host_syncs('profile', ...)`."""
    return benchmark.split("(", 1)[0].rsplit(".", 1)[-1]


def test_aa_same_code_passes(planted, deterministic_results):
    """The same code under another commit: exit 0, every judged metric unchanged or skipped on both for an
    allow-listed reason (optuna, the backtest slow tier, cuda without a GPU); the device host syncs are judged."""
    _, shas = planted
    changes, code, table = verdicts(deterministic_results, shas["base"], shas["aa"])
    assert code == 0, table
    assert changes and all(c.verdict in ("unchanged", "allowed") for c in changes)
    compared = [c for c in changes if c.verdict == "unchanged"]
    assert {c.kind for c in compared} == {"deterministic", "memory"}
    profile_syncs = [
        c for c in compared if c.benchmark.startswith("optimizers.OptimizerMetrics.track_host_syncs('profile'")
    ]
    assert len(profile_syncs) >= 2 * 19  # every profile method but optuna's, 2 strategies
    device = [c.benchmark for c in compared if c.benchmark.startswith("devices.Device")]
    assert "devices.DeviceBacktest.track_host_syncs('cpu')" in device
    on_cpu = [b for b in device if b.startswith("devices.DeviceOptimize.track_host_syncs(")]
    assert len(on_cpu) == 2 * 4  # 2 workloads x 4 methods
    reasons = {c.note for c in changes if c.verdict == "allowed"}
    assert reasons <= {reason for _, reason in gate.ALLOWED}
    assert any("optuna" in r for r in reasons) and any("slow tier" in r for r in reasons)


def test_extra_readback_is_a_regression(planted, deterministic_results):
    """One extra `.item()` per sequential evaluation: exit 1, DIRECT's host syncs named in the table."""
    _, shas = planted
    changes, code, table = verdicts(deterministic_results, shas["base"], shas["extra_readback"])
    assert code == 1
    flagged = {c.benchmark for c in changes if c.verdict == "regression"}
    assert any("track_host_syncs" in b and "direct@default" in b for b in flagged)
    assert all("track_host_syncs" in b for b in flagged)  # nothing else moved
    assert "| regression | `optimizers.OptimizerMetrics.track_host_syncs(" in table


def test_extra_readback_removed_is_an_improvement(planted, deterministic_results):
    """The reverse change: exit 0, reported as improvements."""
    _, shas = planted
    changes, code, table = verdicts(deterministic_results, shas["extra_readback"], shas["base"])
    assert code == 0
    assert any(c.verdict == "improvement" and "track_host_syncs" in c.benchmark for c in changes)
    assert "| improvement |" in table


def test_halved_budget_raises_regret(planted, deterministic_results):
    """DIRECT's default entry/exit budget halved: exit 1 on its regret (fewer evaluations are an improvement)."""
    _, shas = planted
    changes, code, _ = verdicts(deterministic_results, shas["base"], shas["budget_halved"])
    assert code == 1
    regressed = [c for c in changes if c.verdict == "regression"]
    assert any("track_regret_bp" in c.benchmark and "direct@default" in c.benchmark for c in regressed)
    assert all("entry_exit" in c.benchmark for c in regressed)


def test_big_allocation_is_a_memory_regression(planted, deterministic_results):
    """64 MiB more in the batched path: exit 1 on the memray region peak of the batched evaluation."""
    _, shas = planted
    changes, code, _ = verdicts(deterministic_results, shas["base"], shas["big_allocation"])
    assert code == 1
    assert any(
        c.verdict == "regression" and c.benchmark.startswith("memory.BatchedEvalMemory.track_region_peak_bytes")
        for c in changes
    )
    assert all(c.kind == "memory" for c in changes if c.verdict == "regression")


def test_direct_scoring_twice_is_counted_by_the_harness(planted, deterministic_results):
    """DIRECT scores each candidate twice and reads both back, though scipy still reports its own nfev: exit 1 on
    the evaluations and the host syncs the harness counts, on DIRECT's rows only (its answers are unchanged)."""
    _, shas = planted
    changes, code, table = verdicts(deterministic_results, shas["base"], shas["direct_twice"])
    assert code == 1, table
    regressed = [c.benchmark for c in changes if c.verdict == "regression"]
    assert all("'direct@" in b for b in regressed), table
    assert {metric(b) for b in regressed if b.startswith("optimizers.OptimizerMetrics.")} == {
        "track_evaluations",
        "track_host_syncs",
    }
    assert "devices.DeviceOptimize.track_host_syncs('profile', 'direct@100', 'cpu')" in regressed
    assert all(c.verdict in ("unchanged", "allowed") for c in changes if metric(c.benchmark) == "track_regret_bp")


def test_exact_reporting_a_low_supremum_is_caught_against_the_frozen_reference(planted, deterministic_results):
    """The exact solver returns a point 1 bp worse and a supremum 1 bp low: exit 1 on exact's regret, measured
    against the frozen supremum, and on its next-day loss; with the package's supremum as the ruler every other
    method's regret would have dropped by 1 bp, and now none improves."""
    _, shas = planted
    changes, code, table = verdicts(deterministic_results, shas["base"], shas["exact_low"])
    assert code == 1, table
    regressed = [c.benchmark for c in changes if c.verdict == "regression"]
    assert any(metric(b) == "track_regret_bp" and b.endswith(", 'exact')") for b in regressed), table
    # Out of sample too: l + 1e-4 earns less on the frozen test days (0.27 and 0.57 bp a day) for both strategies.
    next_day = [b for b in regressed if metric(b) == "track_next_day_loss_bp"]
    assert len(next_day) == 2 and all(b.endswith(", 'exact')") for b in next_day), table
    assert all(b.endswith(", 'exact')") for b in regressed), table
    improved_regret = [
        c.benchmark for c in changes if c.verdict == "improvement" and metric(c.benchmark) == "track_regret_bp"
    ]
    assert improved_regret == [], table


def test_package_dropping_item_from_its_readbacks_changes_no_host_sync(planted, deterministic_results):
    """`item` removed from the package's READBACK_METHODS: the harness counts `.item()` itself, so exit 0 and
    every host-sync row unchanged."""
    _, shas = planted
    changes, code, table = verdicts(deterministic_results, shas["base"], shas["item_unlisted"])
    assert code == 0, table
    syncs = [c for c in changes if metric(c.benchmark) == "track_host_syncs"]
    # profile: every method but optuna's x 2 strategies; devices on the CPU: 2 workloads x 4 methods + the backtest
    assert sum(c.verdict == "unchanged" for c in syncs) >= 2 * 19 + 2 * 4 + 1, table
    assert all(c.verdict in ("unchanged", "allowed") for c in syncs), table


def test_aa_instruction_counts_pass(planted, instruction_results):
    """The same code under another commit, on instruction counts: exit 0, all four counts judged, unchanged."""
    _, shas = planted
    base, head = gate.load_values(instruction_results, shas["base"]), gate.load_values(instruction_results, shas["aa"])
    gate.check_instructions(base, head, required=True)
    changes, code, _ = verdicts(
        instruction_results, shas["base"], shas["aa"], bench=gate.INSTRUCTION_BENCH, instructions=True
    )
    assert code == 0
    assert [c.kind for c in changes] == ["instructions"] * 4
    assert all(c.verdict == "unchanged" and abs(c.ratio - 1) < gate.INSTRUCTION_FACTOR - 1 for c in changes)


def test_kernel_2x_is_caught_from_instruction_counts_alone(planted, instruction_results):
    """The kernel run twice, no timings at all: exit 1, both kernel paths' instruction counts named (~2x)."""
    _, shas = planted
    changes, code, table = verdicts(
        instruction_results, shas["base"], shas["kernel_2x"], bench=gate.INSTRUCTION_BENCH, instructions=True
    )
    assert code == 1
    regressed = {c.benchmark: c.ratio for c in changes if c.verdict == "regression"}
    for bench in ("SequentialEval", "BatchedEvalPerCandidate"):
        assert f"| regression | `instructions.{bench}.track_instructions` | instructions |" in table
        assert regressed[f"instructions.{bench}.track_instructions"] > 1.5
    assert all(c.kind == "instructions" for c in changes)


def test_unimportable_commit_is_exit_2(planted, tmp_path):
    """A commit whose package cannot be imported: the one command exits 2, never 0 or 1; its metrics are
    `failed` rows in the JSON."""
    clone, shas = planted
    out = tmp_path / "gate.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(GATE),
            shas["base"],
            shas["broken_import"],
            "--repo",
            str(clone),
            "--env-dir",
            str(ENV_DIR),
            "--bench",
            "BatchedEvalMemory.track_region_peak_bytes",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("gate: cannot decide: ")
    payload = json.loads(out.read_text())
    assert payload["exit_code"] == 2
    assert payload["rows"] and all(r["verdict"] == "failed" and r["base"] is not None for r in payload["rows"])


def test_unknown_revision_is_exit_2(tmp_path):
    """A revision that does not exist: exit 2 naming it, before anything runs."""
    proc = subprocess.run([sys.executable, str(GATE), "HEAD", "no-such-rev"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "revision 'no-such-rev' is not a commit" in proc.stderr


@pytest.mark.timing
@pytest.mark.parametrize("plant", ["aa", "python_loop", "kernel_2x"])
def test_timing_plants(planted, tmp_path, plant):
    """On timings alone (no instruction counts): the same code twice exits 0; the batched path as a Python
    loop, or the kernel run twice, exits 1 with the slowed kernel timings named."""
    clone, shas = planted
    out = tmp_path / "gate.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(GATE),
            shas["base"],
            shas[plant],
            "--repo",
            str(clone),
            "--env-dir",
            str(ENV_DIR),
            "--timings",
            "--no-instructions",
            "--bench",
            gate.TIMING_BENCH,
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    assert rows and all(r["kind"] == "timing" for r in rows), proc.stdout + proc.stderr
    if plant == "aa":
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not any(r["verdict"] == "regression" for r in rows)
        return
    assert proc.returncode == 1, proc.stdout + proc.stderr
    flagged = [r["benchmark"] for r in rows if r["verdict"] == "regression"]
    assert len(flagged) >= (3 if plant == "python_loop" else 2), proc.stdout
    assert "| regression | `kernel.BatchedEval.time_eval_batched(" in unpadded(proc.stdout)
