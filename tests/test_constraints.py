"""Issue 11.9: constraints.txt pins the tested versions of everything pyproject.toml needs, and
./run and the Dockerfile install with it."""

from __future__ import annotations

import importlib.util
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

CONSTRAINTS = REPO / "constraints.txt"


def pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: not an exact pin: {line!r}"
            out[canonicalize_name(name)] = version
    return out


def requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + [t for extra in project["optional-dependencies"].values() for t in extra]
    return [Requirement(t) for t in texts]


def test_every_dependency_of_pyproject_is_pinned_within_its_bounds():
    pinned = pins()
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (pyproject.toml) is not pinned in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pinned[name]}, outside pyproject.toml's {req.specifier}"
        )


def test_the_pins_are_the_installed_closure():
    """Transitively: what the installed project needs (with the test extra) is what is pinned, at
    the installed versions (deploy/constraints.py writes it the same way)."""
    spec = importlib.util.spec_from_file_location("pin_constraints", REPO / "deploy" / "constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert pins() == module.closure(), "constraints.txt differs from .venv: see deploy/constraints.py"


def test_the_model_libraries_have_upper_bounds():
    """A new scikit-learn minor makes detectors/store.py refuse every saved model; skops and numpy
    majors may change what a saved model holds."""
    bounded = {canonicalize_name(r.name): r.specifier for r in requirements()}
    for name in ("scikit-learn", "skops", "numpy"):
        assert any(s.operator == "<" for s in bounded[name]), f"{name} has no upper bound in pyproject.toml"
    upper = next(s.version for s in bounded["scikit-learn"] if s.operator == "<")
    tested = pins()["scikit-learn"]
    assert upper.split(".")[:2] == [tested.split(".")[0], str(int(tested.split(".")[1]) + 1)], (
        "scikit-learn's upper bound is the next minor after the tested one"
    )


def test_run_and_the_dockerfile_install_with_the_constraints():
    run = (REPO / "run").read_text()
    assert re.search(r"pip install [^\n]*-c constraints\.txt", run)
    # The install stamp covers constraints.txt: a new pin re-installs.
    stamp = next(line for line in run.splitlines() if ".installed-" in line)
    assert "pyproject.toml" in stamp and "constraints.txt" in stamp
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^COPY [^\n]*constraints\.txt", dockerfile, re.M)
    assert re.search(r"pip install [^\n]*-c constraints\.txt", dockerfile)
