"""The installed packages meet the floors pyproject.toml states, the security floors included:
a downgrade below a fixed advisory (listed in the comments in pyproject.toml) fails here. The lock
(requirements.lock, made by `make lock`) pins every dependency inside pyproject's ranges, and what
is installed is exactly what it pins."""

import re
import tomllib
from importlib.metadata import distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]]
FIXED = {"gradio": "6.16.0", "llama-cpp-python": "0.2.72"}  # the first releases with the fixes pyproject names
GUARDED = (*FIXED, "markdown-it-py")  # markdown-it-py: the parser app/sanitize.py relies on


@pytest.mark.parametrize("requirement", [r for r in REQUIREMENTS if r.name in GUARDED], ids=str)
def test_installed_version_meets_the_floor(requirement):
    installed = version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), f"{installed} is not {requirement}"


@pytest.mark.parametrize("name, fixed", FIXED.items())
def test_security_floors_are_at_or_above_the_fixed_versions(name, fixed):
    floors = [Version(s.version) for r in REQUIREMENTS if r.name == name for s in r.specifier if s.operator == ">="]
    assert floors and all(floor >= Version(fixed) for floor in floors)


ROOT = Path(__file__).parent.parent
LOCK = {}  # name -> the exact version requirements.lock pins, for lines whose markers hold here
for line in (ROOT / "requirements.lock").read_text().splitlines():
    if line and not line[0].isspace() and not line.startswith("#"):
        pinned = Requirement(line)
        if pinned.marker is None or pinned.marker.evaluate():
            LOCK[canonicalize_name(pinned.name)] = Version(next(iter(pinned.specifier)).version)
TORCH_PIN = Requirement(re.search(r"^TORCH := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1))


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=str)
def test_the_lock_pins_every_dependency_inside_its_range(requirement):
    if requirement.name == "torch":  # installed first, from local disk, by the Makefile's pin
        pinned = Version(next(iter(TORCH_PIN.specifier)).version)
    else:
        assert canonicalize_name(requirement.name) in LOCK, f"{requirement.name} is missing from requirements.lock"
        pinned = LOCK[canonicalize_name(requirement.name)]
    assert requirement.specifier.contains(pinned, prereleases=True), f"locked {pinned} is not {requirement}"


def test_what_is_installed_is_what_the_lock_says():
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in distributions()}
    differs = {name: f"installed {installed.get(name)}, locked {pinned}" for name, pinned in LOCK.items()
               if installed.get(name) != pinned}
    assert differs == {}, "run `make install-test` (or `make lock` after changing pyproject.toml)"
