"""Dependency floors above known advisories, and one pinned version of every dependency for CI (constraints.txt)."""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.helpers import BASE_DIR

# the first release without a published advisory, per project and package
ADVISORY_FREE_FLOORS = {
    ("pyproject.toml", "django"): "5.2.8",
    ("pyproject.toml", "djangorestframework"): "3.15.2",
    ("pyproject.toml", "cryptography"): "44.0.1",
    ("agent/pyproject.toml", "cryptography"): "44.0.1",
}


def requirements(pyproject: str, *, extras: tuple[str, ...] = ()) -> dict[str, Requirement]:
    project = tomllib.loads((BASE_DIR / pyproject).read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {canonicalize_name(r.name): r for r in map(Requirement, specs)}


def floor(req: Requirement) -> Version | None:
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(lows) if lows else None


@pytest.mark.parametrize(("pyproject", "name"), sorted(ADVISORY_FREE_FLOORS))
def test_floors_are_above_known_advisories(pyproject: str, name: str):
    req = requirements(pyproject)[name]
    assert floor(req) is not None and floor(req) >= Version(ADVISORY_FREE_FLOORS[pyproject, name]), str(req)


def test_mcp_is_bounded_above():
    req = requirements("pyproject.toml")["mcp"]
    assert not req.specifier.contains("3.0") and req.specifier.contains("2.3.0"), str(req)


def test_every_dependency_is_pinned_in_constraints_within_its_range():
    pins = {}
    for line in (BASE_DIR / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    wanted = {**requirements("pyproject.toml", extras=("test",)), **requirements("agent/pyproject.toml")}
    missing = sorted(set(wanted) - set(pins))
    assert missing == [], f"not pinned in constraints.txt (refresh it: scripts/freeze_constraints.py): {missing}"
    outside = {n: pins[n] for n, req in wanted.items() if not req.specifier.contains(pins[n], prereleases=True)}
    assert outside == {}, "constraints.txt pins versions its pyproject.toml does not allow"
    assert "powernode" not in pins and "powernode-agent" not in pins  # the editable projects themselves
