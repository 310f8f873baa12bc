"""The compiled path (`Objective.score(..., compiled=True)`): the same scores as eager, counted the
same way, and an eager fallback with one warning per cache key when compilation fails; compile state is held per
cache key (the device type), never in a rebound module global."""

from __future__ import annotations

import ast
import functools
import inspect
import warnings

import pytest
import torch

from marketsim_opt import compiled, count_syncs
from marketsim_opt.data import synthetic_problem
from marketsim_opt.strategies import always_on_objective, entry_exit_objective


def candidates(shape, dtype):
    gen = torch.Generator().manual_seed(5)
    return tuple(torch.rand(shape, generator=gen, dtype=torch.float64).mul(0.06).sub(0.03).to(dtype) for _ in "hl")


class Makers:
    """`make` callables for `CompileState`: keys in `broken` fail to compile, others 'compile' to eager."""

    def __init__(self, broken=()):
        self.broken = set(broken)
        self.made: list[str] = []  # the key of every make() call
        self.ran: list[str] = []  # the key of every call of a made callable

    def __call__(self, key):
        def make():
            self.made.append(key)

            def run(*args):
                self.ran.append(key)
                if key in self.broken:
                    raise torch._dynamo.exc.BackendCompilerFailed(run, OSError(f"no compiler for {key}"), None)
                return compiled._summed_profit(*args)

            return run

        return make


@pytest.fixture
def makers(monkeypatch):
    """A private per-key cache whose states compile with `Makers` (the process's own cache is left untouched)."""
    made = Makers()
    monkeypatch.setattr(compiled, "compile_state", functools.cache(lambda key: compiled.CompileState(key, made(key))))
    return made


def kernel_args(n=20, k=33, seed=6):
    """`summed_profit`'s positional arguments for an entry/exit objective on one series, as `Objective.score`
    passes them: `[1, 1, N]` days, `[1, K, 1]` offsets; and the eager `[1, K]` scores."""
    obj = entry_exit_objective(synthetic_problem(n, seed=seed, dtype=torch.float64))
    p = obj.problem
    h, l = candidates((1, k), torch.float64)
    days = tuple(t.unsqueeze(-2) for t in (p.close, p.high, p.high_pred, p.low, p.low_pred))
    legs = tuple(leg.unsqueeze(-2) for leg in obj.legs)
    return (*days, legs, h.unsqueeze(-1), l.unsqueeze(-1), False, p.trading_fee), obj.score(h, l)


@pytest.mark.parametrize("close_at_eod", [False, True])
def test_compiled_matches_eager_float64(close_at_eod):
    """float64, S = 2 always-on (two legs): compiled scores equal eager's to rounding, evaluations counted."""
    problem = synthetic_problem(30, seed=2, dtype=torch.float64).concat(
        synthetic_problem(30, seed=3, dtype=torch.float64)
    )
    obj = always_on_objective(problem, close_at_eod=close_at_eod)
    assert problem.n_sims == 2
    h, l = candidates((2, 257), torch.float64)
    with count_syncs() as counter:
        fused = obj.score(h, l, compiled=True)
    assert counter.evaluations == 2 * 257 and counter.syncs == 0
    assert compiled.fallback_reason("cpu") is None
    assert fused.shape == (2, 257)
    torch.testing.assert_close(fused, obj.score(h, l), rtol=0, atol=1e-12)


@pytest.mark.cpu_dependent
def test_compiled_matches_eager_float32():
    """float32 entry/exit on one series ([1, K] candidates): equal to eager up to float32 summation order."""
    obj = entry_exit_objective(synthetic_problem(200, seed=4))
    h, l = candidates((1, 4096), torch.float32)
    fused = obj.score(h, l, compiled=True)
    assert fused.shape == (1, 4096)
    torch.testing.assert_close(fused, obj.score(h, l), rtol=0, atol=1e-5)


def test_failed_compilation_falls_back_to_eager_once(makers):
    """A compiler failure on the candidates' device warns once, names the reason and leaves eager scores; later
    calls stay eager without another attempt; the process's own state for that device is untouched."""
    makers.broken.add("cpu")
    obj = entry_exit_objective(synthetic_problem(20, seed=6, dtype=torch.float64))
    h, l = candidates((1, 33), torch.float64)
    with pytest.warns(
        RuntimeWarning, match="torch.compile unavailable for 'cpu', using eager torch: no compiler for cpu"
    ):
        first = obj.score(h, l, compiled=True)
    assert torch.equal(first, obj.score(h, l))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        second = obj.score(h, l, compiled=True)
    assert torch.equal(second, first) and makers.made == ["cpu"] and makers.ran == ["cpu"]
    assert compiled.fallback_reason("cpu") == compiled.fallback_reason(torch.device("cpu")) == "no compiler for cpu"
    assert compiled.fallback_reason("cuda:0") is None
    assert compiled.fallback_reason() == "cpu: no compiler for cpu"


def test_failure_on_one_key_leaves_another_compiling(makers):
    """Key `cuda` fails to compile; key `cpu` keeps its compiled callable, before and after the failure."""
    makers.broken.add("cuda")
    args, eager = kernel_args()
    cpu, cuda = compiled.compile_state("cpu"), compiled.compile_state("cuda")
    assert compiled.compile_state("cpu") is cpu  # one state per key
    torch.testing.assert_close(cpu(*args), eager, rtol=0, atol=1e-12)
    with pytest.warns(RuntimeWarning, match="'cuda'"):
        torch.testing.assert_close(cuda(*args), eager, rtol=0, atol=1e-12)
    for _ in range(2):
        cpu(*args)
        cuda(*args)
    # cpu ran its compiled callable every time (3 calls), cuda tried once and stayed eager
    assert makers.ran == ["cpu", "cuda", "cpu", "cpu"] and sorted(makers.made) == ["cpu", "cuda"]
    assert cpu.fallback is None and compiled.fallback_reason("cpu") is None
    assert compiled.fallback_reason("cuda") == "no compiler for cuda"
    assert compiled.fallback_reason() == "cuda: no compiler for cuda"


def test_fallback_warns_once_per_key(makers):
    """Two failing keys: exactly one warning each, however many calls."""
    makers.broken.update({"cpu", "cuda"})
    args, eager = kernel_args(k=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # no deduplication by the warnings registry
        for _ in range(3):
            for key in ("cpu", "cuda"):
                torch.testing.assert_close(compiled.compile_state(key)(*args), eager, rtol=0, atol=1e-12)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning))
    assert messages == [
        "torch.compile unavailable for 'cpu', using eager torch: no compiler for cpu",
        "torch.compile unavailable for 'cuda', using eager torch: no compiler for cuda",
    ]
    assert compiled.fallback_reason() == "cpu: no compiler for cpu; cuda: no compiler for cuda"


def test_module_has_no_global_state():
    """compiled.py has no `global`/`nonlocal` statement, and binds at module level only constants, tuples,
    functions and classes (the per-key cache lives in `compile_state`'s functools.cache)."""
    tree = ast.parse(inspect.getsource(compiled))
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Global, ast.Nonlocal))]
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = node.value
            assert isinstance(value, (ast.Constant, ast.Tuple)) and all(
                isinstance(elt, ast.Constant) for elt in getattr(value, "elts", [])
            ), f"module-level mutable binding at line {node.lineno}: {ast.unparse(node)}"


def test_a_fallback_rebinds_no_module_global(makers):
    """After a failure on one key and a compile on another, every module-level name is the same object."""
    makers.broken.add("cuda")
    before = dict(vars(compiled))
    args, _ = kernel_args(k=3)
    compiled.compile_state("cpu")(*args)
    with pytest.warns(RuntimeWarning):
        compiled.compile_state("cuda")(*args)
    after = vars(compiled)
    assert before.keys() == after.keys() and all(after[name] is value for name, value in before.items())


def test_warm_up_reports_seconds():
    """`warm_up` compiles the [S, K] path ahead of time and returns the seconds it took (> 0 the first time)."""
    obj = entry_exit_objective(synthetic_problem(12, seed=8))
    assert compiled.warm_up(obj, 16) > 0
    assert compiled.fallback_reason("cpu") is None
