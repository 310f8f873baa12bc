"""Regenerate (or check) the suite's frozen references with the package's exact solver.

    python tools/freeze_references.py [--check] [--dir DIR]

For each workload the suite scores (`marketsim_opt.workloads.profile()` and `backtest()`, float32 as the suite
uses them), each strategy and BOTH policies, runs `optimize(..., method="exact")` over `DEFAULT_BOUNDS` and
writes the data (float64 `[S, N]`) and the suprema to `benchmarks/ruler/frozen/<workload>.json`
(`benchmarks.ruler.references` reads them).  The backtest's file also gets `next_day`, each simulation's test
day from `marketsim_opt.oos.next_days(oos.bundled_series(), sims=S)` (float64 `[S]` moves and the test dates),
checked to be the bar right after the simulation's fitted window (simulation k's test day is the last fitted day
of simulation k - 1).  Files are written atomically; a file this tool did not write
(no `"generated_by": "tools/freeze_references.py"`) is never overwritten.

`--check` recomputes and compares with the files instead of writing: data within the loader's relative 1e-6
(`check_same_data`), suprema within 1e-12 absolute, test days within relative 1e-12 and dates exactly
(`check_same_next_day`).  Exit codes: 0 written / all agree, 1 something differs
(each difference printed: file, strategy, policy, simulation, both values), 2 a missing or broken file or
any other failure (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "tools") not in sys.path:  # the tools' shared _atomic, also when this file is loaded by path
    sys.path.append(str(REPO / "tools"))

from _atomic import write_text_atomic  # noqa: E402

from benchmarks.ruler import references as refs  # noqa: E402

#: Largest |frozen - recomputed| supremum `--check` accepts (fractions of the previous close).
SUPREMUM_ATOL = 1e-12


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def frozen_from() -> str:
    """Provenance: the package's commit (dirty when marketsim_opt/ has uncommitted changes), torch, the machine."""
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "marketsim_opt"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        commit += " (marketsim_opt/ modified)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return (
        f"marketsim_opt at {commit}; torch {torch.__version__}; {platform.system()} {platform.machine()}, "
        f"cpu capability {torch.backends.cpu.get_cpu_capability()}"
    )


def workload_documents() -> dict[str, dict]:
    """The reference document of every workload in `refs.WORKLOADS`, computed with the package's exact solver."""
    from marketsim_opt import workloads
    from marketsim_opt.optimizers.api import DEFAULT_BOUNDS, optimize

    builders = {"profile": workloads.profile, "backtest": workloads.backtest}
    provenance = frozen_from()
    docs = {}
    for name in refs.WORKLOADS:
        work = builders[name]()
        problem = work.problem
        policies = [False, True] if work.close_at_eod is None else [bool(work.close_at_eod)]
        n_days = problem.n_days
        suprema: dict[str, dict[str, list[float]]] = {}
        for strategy in refs.STRATEGIES:
            suprema[strategy] = {}
            for policy in refs.POLICIES:
                result = optimize(
                    problem,
                    strategy,
                    close_at_eod=policy,
                    method="exact",
                    bounds=DEFAULT_BOUNDS,
                )
                values = [float(v) for v in _flat(result.supremum)]
                suprema[strategy][refs.POLICY_NAMES[policy]] = values
                log(f"{name} {strategy} {refs.POLICY_NAMES[policy]}: {len(values)} suprema, max {max(values):.9g}")
        next_day = _next_day(problem) if name in refs.NEXT_DAY_WORKLOADS else None
        docs[name] = {
            "format": refs.FORMAT,
            "generated_by": refs.GENERATED_BY,
            "workload": name,
            "frozen_from": provenance,
            "regenerate": refs.REGENERATE,
            "trading_fee": float(problem.trading_fee),
            "is_crypto": bool(problem.is_crypto),
            "policies": policies,
            "bounds": [[float(lo), float(hi)] for lo, hi in DEFAULT_BOUNDS],
            "data": {f: getattr(problem, f).double().reshape(-1, n_days).tolist() for f in refs.FIELDS},
            "suprema": suprema,
            "next_day": next_day,
        }
    return docs


def _next_day(problem) -> dict:
    """The `next_day` block of the backtest: the test day of each of the problem's `S` simulations.

    RuntimeError when the walk-forward's test days are not the bars right after the backtest's windows.
    """
    import numpy as np

    from marketsim_opt import oos

    n_sims = problem.n_sims
    bars = oos.bundled_series()
    day = oos.next_days(bars, sims=n_sims)
    block: dict = {"dates": [str(bars.time[i + 1]) for i in day["index"]]}
    block |= {f: [float(v) for v in np.asarray(day[f], dtype=np.float64)] for f in refs.NEXT_DAY_FIELDS}
    for f in refs.NEXT_DAY_FIELDS:
        last_fitted = getattr(problem, f).double().reshape(n_sims, -1)[:, -1].numpy()  # [S]
        test = np.asarray(block[f])
        if not np.allclose(test[1:], last_fitted[:-1], rtol=refs.DATA_RTOL, atol=0.0):
            raise RuntimeError(
                f"next_day.{f}: the test day of simulation k is not the last fitted day of simulation k - 1 "
                "(marketsim_opt.oos.next_days and workloads.backtest disagree on the windows)"
            )
    log(f"backtest next_day: {n_sims} test days, {block['dates'][-1]} .. {block['dates'][0]}")
    return block


def _flat(value) -> list:
    import numpy as np

    return np.atleast_1d(np.asarray(value, dtype=np.float64)).tolist()


def dumps(value, indent: int = 0) -> str:
    """JSON with every list of scalars on one line (a row of data per line); floats as `json.dumps` writes them."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(f"{inner}{dumps(v, indent + 2)}" for v in value) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def is_ours(path: Path) -> bool:
    """Whether `path` is a JSON object this tool wrote (its `generated_by`)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("generated_by") == refs.GENERATED_BY


def freeze(directory: Path) -> int:
    """Write every workload's reference into `directory`; 2 (nothing written) if a target is not this tool's."""
    targets = {name: directory / f"{name}.json" for name in refs.WORKLOADS}
    for path in targets.values():
        if path.exists() and not is_ours(path):
            log(
                f"freeze_references: refusing to overwrite {refs.display_path(path)}: it has no "
                f'"generated_by": "{refs.GENERATED_BY}" (not written by this tool); move it away first'
            )
            return 2
    docs = workload_documents()
    for name, path in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, dumps(docs[name]) + "\n")
        log(f"wrote {refs.display_path(path)}")
    return 0


def check(directory: Path) -> int:
    """Compare the files in `directory` with a fresh computation: 0 agree, 1 differ (printed), 2 broken file."""
    try:
        frozen = {name: refs.load(name, directory) for name in refs.WORKLOADS}
    except refs.ReferenceError as exc:
        log(f"freeze_references: {exc}")
        return 2
    docs = workload_documents()
    differences = []
    for name, doc in docs.items():
        ref = frozen[name]
        where = refs.display_path(ref.path)
        if list(ref.policies) != doc["policies"]:
            differences.append(f"{where}: policies: frozen {list(ref.policies)}, now {doc['policies']}")
        if [list(b) for b in ref.bounds] != doc["bounds"]:
            differences.append(f"{where}: bounds: frozen {[list(b) for b in ref.bounds]}, now {doc['bounds']}")
        try:
            refs.check_same_data(ref, **doc["data"], trading_fee=doc["trading_fee"], is_crypto=doc["is_crypto"])
        except refs.ReferenceError as exc:
            differences.append(str(exc))
            continue  # other data: its suprema differ for that reason
        if doc["next_day"] is not None or ref.next_day is not None:
            try:
                if doc["next_day"] is None:
                    raise refs.ReferenceError(f"{where}: next_day: frozen, but this workload has none now")
                refs.check_same_next_day(ref, **doc["next_day"])
            except refs.ReferenceError as exc:
                differences.append(str(exc))
        for strategy in refs.STRATEGIES:
            for policy in refs.POLICIES:
                key = refs.POLICY_NAMES[policy]
                now = doc["suprema"][strategy][key]
                old = ref.suprema[(strategy, policy)]
                for s, (a, b) in enumerate(zip(old, now)):
                    if not abs(a - b) <= SUPREMUM_ATOL:
                        differences.append(
                            f"{where}: suprema.{strategy}.{key}[{s}] (strategy {strategy}, policy {key}, "
                            f"simulation {s}): frozen {float(a)!r}, now {b!r} (differ by {b - a:.3g})"
                        )
    for line in differences:
        print(line)
    if differences:
        print(f"{len(differences)} difference(s); regenerate with `{refs.REGENERATE}` if the change is deliberate")
        return 1
    print(
        f"references agree ({', '.join(refs.WORKLOADS)}): data within rtol {refs.DATA_RTOL:g}, suprema within "
        f"{SUPREMUM_ATOL:g}, test days within rtol {refs.NEXT_DAY_RTOL:g}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    parser.add_argument("--dir", type=Path, default=refs.REFERENCE_DIR, help="folder of the reference files")
    args = parser.parse_args(argv)
    try:
        return check(args.dir) if args.check else freeze(args.dir)
    except Exception as exc:  # noqa: BLE001 - any failure is "cannot decide": exit 2 with one line
        message = " ".join(str(exc).split())
        log(f"freeze_references: {type(exc).__name__}: {message}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
