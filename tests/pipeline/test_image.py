"""The pipeline image's layout, without Docker: the Dockerfile's copies, a non-editable install, a compile.

Slowish (about 30 s, mostly TensorFlow's import in the compile): it installs the
package into a fresh venv, which reuses the project's .venv for every dependency
through a .pth file, so nothing is downloaded. No pipeline runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def image_layout(root: Path) -> tuple[Path, dict[str, str]]:
    """Copy what the Dockerfile copies under ``root`` (standing for /); return its WORKDIR and ENV."""
    workdir, env = root, {}
    for line in (REPO_ROOT / "Dockerfile").read_text().splitlines():
        instruction, _, rest = line.partition(" ")
        if instruction == "WORKDIR":
            workdir = root / rest.strip().lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "ENV":
            key, _, value = rest.strip().partition("=")
            env[key] = str(root / value.lstrip("/")) if value.startswith("/") else value
        elif instruction == "COPY":
            *sources, dest = shlex.split(rest)
            for source in sources:
                src = REPO_ROOT / source
                if src.is_dir():
                    shutil.copytree(src, workdir / dest, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(src, workdir / dest)
    return workdir, env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The image's /pipeline under a temp root, and a venv with the package installed from it as the image does."""
    tmp = tmp_path_factory.mktemp("image")
    workdir, env = image_layout(tmp / "root")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    # The project's dependencies, not its editable install (a plain path line runs no .pth in that directory).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
         "--no-deps", "--no-build-isolation", "."],
        cwd=workdir, check=True,
    )
    run_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env
    return workdir, venv, site, run_env


@pytest.mark.parametrize("schema_file", ["/pipeline/schema/schema.pbtxt", "schema/schema.pbtxt"])
def test_the_installed_package_compiles_with_the_images_paths_from_any_directory(installed, tmp_path, schema_file):
    """The shipped vertex profile (the schema at its image path), and one naming it relative to the project root."""
    workdir, venv, site, env = installed
    found = subprocess.run(
        [venv / "bin" / "python", "-c", "import pipeline.config as c; print(c.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )
    assert Path(found.stdout.strip()).parent == site / "pipeline"  # the installed copy, not a source tree
    profile = (workdir / "pipeline" / "profiles" / "vertex.yaml").read_text()
    assert "schema_file: /pipeline/schema/schema.pbtxt" in profile
    (tmp_path / "my-vertex.yaml").write_text(profile.replace("/pipeline/schema/schema.pbtxt", schema_file))

    result = subprocess.run(
        [venv / "bin" / "tfxp", "compile", "--profile", "my-vertex.yaml", "--out", "job.json"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job = json.loads((tmp_path / "job.json").read_text())
    params = job["pipelineSpec"]["root"]["dag"]["tasks"]["ImportSchemaGen"]["inputs"]["parameters"]
    compiled = {name: p["runtimeValue"]["constantValue"]["stringValue"] for name, p in params.items()}
    # In the image, /pipeline is the project root: this layout's stand-in for it.
    image_schema = schema_file if schema_file.startswith("/") else f"{workdir}/{schema_file}"
    schema = (workdir / "schema" / "schema.pbtxt").read_bytes()
    assert compiled == {"schema_file": image_schema, "content_fingerprint": hashlib.sha256(schema).hexdigest()}
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://my-bucket/taxi-pipeline/tfx_root"
