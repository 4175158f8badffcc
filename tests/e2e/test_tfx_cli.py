"""The TFX CLI flow from the repo root: `tfx pipeline create`, then `tfx run create`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.results import latest_run
from tests.conftest import FIXTURE_TRAIN_STEPS, REPO_ROOT

pytestmark = pytest.mark.e2e


def _tfx(args, env, timeout=600):
    tfx = str(Path(sys.executable).parent / "tfx")
    return subprocess.run(
        [tfx, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(("engine", "runner"), [("local", "runners/local_runner.py"), ("beam", "runners/beam_runner.py")])
def test_create_then_run(trained_run, tmp_path, engine, runner):
    cfg = trained_run.cfg
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": cfg.name,
                "output_dir": cfg.output_dir,
                "data": {"root": cfg.data.root},
                "training": {"train_steps": FIXTURE_TRAIN_STEPS},
            }
        )
    )
    # The TFX CLI keeps its pipeline registry under $HOME/tfx: isolate it.
    env = {**os.environ, "HOME": str(tmp_path), "TFXP_PROFILE": str(profile)}
    created = _tfx(["pipeline", "create", "--engine", engine, "--pipeline_path", runner], env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"Pipeline \"{cfg.name}\" created successfully." in created.stdout
    versions_before = sorted(os.listdir(cfg.model_base_path))
    ran = _tfx(["run", "create", "--engine", engine, "--pipeline_name", cfg.name], env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # Same inputs as the trained run: the CLI's run is served from cache.
    nodes = latest_run(cfg.metadata_path, cfg.name)
    states = {n: r.state for n, r in nodes.items() if n != "LatestBlessedModelResolver"}
    assert set(states.values()) == {"CACHED"}, states
    assert len(states) == 9
    assert sorted(os.listdir(cfg.model_base_path)) == versions_before
