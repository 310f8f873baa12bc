"""The public names of `marketsim_opt.data` and `marketsim_opt.workloads`: exported, present and documented.

The names the package's other modules and the benchmarks import from these two modules are read from their
source, so a name used elsewhere but missing from `__all__` (or an `__all__` entry that no longer exists) fails.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("data", "workloads")


def names_used_from(module: str) -> set[str]:
    """Public names that `marketsim_opt/**` and `benchmarks/**` take from `marketsim_opt.<module>`.

    Counts `from ...<module> import x` and `<module>.x` where `<module>` was imported from the package.
    """
    used: set[str] = set()
    files = [*(ROOT / "marketsim_opt").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    for path in files:
        if path.name == f"{module}.py" and path.parent.name == "marketsim_opt":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            package = node.module or ""
            if package.split(".")[-1] == module and (node.level > 0 or package.startswith("marketsim_opt")):
                used.update(a.name for a in node.names)
            elif package == "marketsim_opt" or (node.level > 0 and not package):
                aliases.update(a.asname or a.name for a in node.names if a.name == module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                used.add(node.attr)
    return {name for name in used if not name.startswith("_")}


@pytest.mark.parametrize("module", MODULES)
def test_all_names_exist_and_are_documented(module):
    """Every name in `__all__` exists; every exported function and class has a docstring."""
    mod = importlib.import_module(f"marketsim_opt.{module}")
    assert len(set(mod.__all__)) == len(mod.__all__), "duplicate names in __all__"
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which does not exist"
        obj = getattr(mod, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{module}.{name} has no docstring"


@pytest.mark.parametrize("module", MODULES)
def test_names_used_elsewhere_are_exported(module):
    """What cli, comparison, reports, optimizers and the benchmarks take from the module is in its `__all__`."""
    mod = importlib.import_module(f"marketsim_opt.{module}")
    used = names_used_from(module)
    assert used, f"found no use of marketsim_opt.{module}: the source scan is broken"
    assert used <= set(mod.__all__), f"used but not exported: {sorted(used - set(mod.__all__))}"
