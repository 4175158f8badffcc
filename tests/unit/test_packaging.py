"""setup.py declares every distribution the code imports, and the lock satisfies each range."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from functools import cache
from pathlib import Path

import importlib_metadata  # the backport: the 3.10 stdlib's packages_distributions() reads only top_level.txt
import pytest
import setuptools  # noqa: F401  (first, so distutils below is setuptools' own)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

PACKAGES = ("pipeline", "models", "runners", "serving", "review", "validation", "monitoring", "tracking")
OURS = {*PACKAGES, "tests", "bench", "__future__"}
# The build backend (pyproject.toml [build-system]; the Makefile pins it), not a dependency.
BUILD_TOOLS = {"setuptools"}
# Plugins used only when the user installed them (imported behind find_spec):
# tensorflow-io adds s3:// and hdfs:// to tf.io.gfile for `tfxp serve`.
OPTIONAL = {"tensorflow_io"}
# Code that only runs with an extra installed: package (or module) -> extra.
EXTRA_OF = {"serving": "serving", "tracking": "mlflow"}


@cache
def declared() -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    from distutils.core import run_setup

    dist = run_setup(str(REPO_ROOT / "setup.py"), stop_after="init")
    extras = {name: [Requirement(r) for r in reqs] for name, reqs in dist.extras_require.items()}
    return [Requirement(r) for r in dist.install_requires], extras


def names(reqs: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in reqs}


def imports(path: Path) -> set[str]:
    """Dotted names of every absolute import in a file (``from a.b import c`` gives ``a.b.c``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    skip = OURS | BUILD_TOOLS | OPTIONAL | sys.stdlib_module_names
    return {name for name in found if name.split(".")[0] not in skip}


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib_metadata.packages_distributions()


def distributions(module: str) -> set[str]:
    """The distributions that can provide ``module``; for a namespace package (google), the one shipping it."""
    top, *_ = parts = module.split(".")
    candidates = _packages_distributions().get(top, [])
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin not in (None, "namespace"):
        return {canonicalize_name(d) for d in candidates}
    for depth in range(len(parts), 1, -1):
        prefix = tuple(parts[:depth])
        shipping = {
            canonicalize_name(d)
            for d in candidates
            for f in importlib_metadata.distribution(d).files or ()
            if f.parts[:depth] == prefix or f.parts[:depth] == (*prefix[:-1], prefix[-1] + ".py")
        }
        if shipping:
            return shipping
    return {canonicalize_name(d) for d in candidates}


def undeclared(files: list[Path], allowed: set[str]) -> list[str]:
    missing = []
    for path in files:
        for module in sorted(imports(path)):
            dists = distributions(module)
            if not dists & allowed:
                missing.append(f"{path.relative_to(REPO_ROOT)}: {module} (from {sorted(dists) or 'no distribution'})")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_of_the_packages_is_declared(package):
    core, extras = declared()
    allowed = names(core) | (names(extras[EXTRA_OF[package]]) if package in EXTRA_OF else set())
    assert undeclared(sorted((REPO_ROOT / package).rglob("*.py")), allowed) == []


def test_tests_and_bench_need_only_the_dev_extra():
    core, extras = declared()
    files = sorted((REPO_ROOT / "tests").rglob("*.py")) + sorted((REPO_ROOT / "bench").rglob("*.py"))
    assert undeclared(files, names(core) | names(extras["dev"])) == []


def test_a_namespace_import_maps_to_the_distribution_that_ships_it():
    assert distributions("google.cloud.aiplatform") == {"google-cloud-aiplatform"}
    assert distributions("google.protobuf.text_format") == {"protobuf"}
    assert distributions("sklearn.metrics") == {"scikit-learn"}
    assert imports(REPO_ROOT / "pipeline" / "vertex.py") >= {"google.cloud.aiplatform", "google.auth"}


def test_the_lock_satisfies_every_declared_range():
    core, extras = declared()
    lock = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            lock[canonicalize_name(name)] = version.strip()
    outside = [
        f"{r} (lock: {lock.get(canonicalize_name(r.name), 'absent')})"
        for r in core + [r for reqs in extras.values() for r in reqs]
        if canonicalize_name(r.name) not in lock or not r.specifier.contains(lock[canonicalize_name(r.name)])
    ]
    assert outside == []
    pinned = [str(r) for r in core if any(s.operator == "==" for s in r.specifier)]
    assert pinned == [], "setup.py declares ranges; requirements.lock pins"


@pytest.mark.parametrize(
    "blocked, argv, needs, exit_code",
    [
        # serve's exit code for anything that stops it before it starts; predict's for any failure.
        ("starlette", ["serve", "--model_name", "taxi", "--model_base_path", "{tmp}"], "tfxp serve needs starlette", 2),
        ("httpx", ["predict", "{tmp}/rows.csv"], "tfxp predict needs httpx", 1),
    ],
)
def test_a_command_of_the_serving_extra_without_it_says_what_to_install(tmp_path, blocked, argv, needs, exit_code):
    # None in sys.modules is how Python marks a module as not importable.
    code = f"import sys; sys.modules[{blocked!r}] = None; from pipeline.cli import main; main()"
    (tmp_path / "rows.csv").write_text("trip_miles\n1.5\n")
    done = subprocess.run(
        [sys.executable, "-c", code, *(a.format(tmp=tmp_path) for a in argv)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"{needs}, from the serving extra: pip install -c requirements.lock '.[serving]'" in done.stderr
