"""tools/asv_machine.py: the machine file names the hardware, and asv reads it back."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "asv_machine.py"
FIELDS = ("machine", "os", "arch", "cpu", "num_cpu", "ram")


def load_tool():
    spec = importlib.util.spec_from_file_location("asv_machine", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hardware_has_every_field():
    info = load_tool().hardware("cpu-2core")
    assert tuple(info) == FIELDS and all(isinstance(v, str) and v for v in info.values())
    assert info["machine"] == "cpu-2core" and int(info["num_cpu"]) >= 1 and info["ram"].endswith("GB")


def test_register_keeps_other_machines(tmp_path):
    path = tmp_path / "machines.json"
    other = {"machine": "laptop", "cpu": "something else"}
    path.write_text(json.dumps({"laptop": other, "version": 1}))
    info = load_tool().register("cpu-2core", path)
    saved = json.loads(path.read_text())
    assert saved == {"laptop": other, "cpu-2core": info, "version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["machines.json"]  # no temporary left behind


def test_asv_reads_the_hardware_back(tmp_path):
    machine = pytest.importorskip("asv.machine", reason="asv (the bench extra)")
    path = tmp_path / "machines.json"
    info = load_tool().register("ci", path)
    assert machine.MachineCollection.load("ci", _path=str(path)) == info


@pytest.mark.parametrize(
    "content, problem", [("{not json", "not JSON"), ("[1, 2]", "expected a JSON object")], ids=["garbled", "list"]
)
def test_a_bad_machine_file_is_named_and_left_alone(tmp_path, content, problem):
    path = tmp_path / "machines.json"
    path.write_text(content)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "ci", "--path", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and str(path) in proc.stderr and problem in proc.stderr
    assert path.read_text() == content


def test_the_command_reports_what_it_wrote(tmp_path):
    path = tmp_path / "machines.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "cpu-2core", "--path", str(path)], capture_output=True, text=True, check=True
    )
    cpu = json.loads(path.read_text())["cpu-2core"]["cpu"]
    assert proc.stdout.startswith("asv machine 'cpu-2core': ") and cpu in proc.stdout
