"""The installed packages meet the floors pyproject.toml states, the security floors included:
a downgrade below a fixed advisory (listed in the comments in pyproject.toml) fails here."""

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
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
