"""The pins agree everywhere; the environment helpers behave."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT
from course_utils import environment


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line} is not an exact pin"
        found[req.name.lower().replace("_", "-")] = spec.version
    return found


def requirements() -> dict[str, str]:
    return pins((ROOT / "requirements.txt").read_text().splitlines())


def conda_pip() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return pins(section)


def test_environment_yml_lists_the_same_packages_and_versions():
    assert requirements() == conda_pip()


def test_environment_yml_uses_conda_forge_and_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]


def test_torch_pinned_to_the_local_cpu_wheel():
    assert requirements()["torch"] == "2.13.0"


def test_lock_agrees_with_pins():
    lock = pins(line for line in (ROOT / "requirements.lock").read_text().splitlines())
    for name, version in requirements().items():
        assert lock.get(name) == version, f"{name}: lock has {lock.get(name)}, pin {version}"


def test_pyproject_ranges_admit_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = requirements()
    for line in project["dependencies"] + project["optional-dependencies"]["offline"]:
        req = Requirement(line)
        name = req.name.lower()
        assert name in pinned, f"{name} is a dependency but not pinned in requirements.txt"
        assert Version(pinned[name]) in req.specifier, f"{name}=={pinned[name]} not in {req}"


def test_readme_states_the_tested_transformers_version():
    readme = (ROOT / "README.md").read_text()
    assert f"transformers {requirements()['transformers']}" in readme


def test_tested_range_contains_the_pin():
    assert Version(requirements()["transformers"]) in environment.TESTED["transformers"]


def test_version_warnings_flag_out_of_range_versions():
    assert environment.version_warnings({"transformers": "5.23.0", "torch": "2.13.0+cpu"}) == []
    warnings = environment.version_warnings({"transformers": "4.46.0", "torch": "2.13.0"})
    assert len(warnings) == 1 and warnings[0].startswith("transformers 4.46.0")
    assert "not installed" in environment.version_warnings({"torch": "2.13.0"})[0]


def test_seed_everything_makes_sampling_reproducible():
    import torch

    environment.seed_everything(7)
    first = torch.rand(3)
    environment.seed_everything(7)
    assert torch.equal(first, torch.rand(3))


def test_colab_detection(monkeypatch):
    import sys
    import types

    assert not environment.in_colab()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert environment.in_colab()


def test_setup_prints_device_versions_and_tier(capsys):
    device = environment.setup(seed=0)
    out = capsys.readouterr().out
    assert device.type in ("cpu", "cuda", "mps")
    assert re.search(rf"device: {device.type} .* transformers \d", out)
    assert "models: offline tier" in out
