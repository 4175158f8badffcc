"""The TFX CLI flow from the repo root: `tfx pipeline create`, then `tfx run create`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from pipeline.results import latest_run
from tests.conftest import FIXTURE_TRAIN_STEPS, REPO_ROOT

pytestmark = pytest.mark.e2e


def _tfx(args, env, timeout=600):
    tfx = str(Path(sys.executable).parent / "tfx")
    return subprocess.run(
        [tfx, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("engine", "runner"), [("local", "runners/local_runner.py"), ("beam", "runners/beam_runner.py")]
)
def test_create_then_run(fixture_data_dir, tmp_path, engine, runner):
    cfg = load_config("local", {"output_dir": str(tmp_path / "out"), "data.root": str(fixture_data_dir)})
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": cfg.name,
                "output_dir": cfg.output_dir,  # a fresh store: every component executes, none is a cache hit
                "data": {"root": cfg.data.root},
                "training": {"train_steps": FIXTURE_TRAIN_STEPS},
            }
        )
    )
    # The TFX CLI keeps its pipeline registry under $HOME/tfx: isolate it.
    env = {**os.environ, "HOME": str(tmp_path), "TFXP_PROFILE": str(profile)}
    created = _tfx(["pipeline", "create", "--engine", engine, "--pipeline_path", runner], env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f'Pipeline "{cfg.name}" created successfully.' in created.stdout
    ran = _tfx(["run", "create", "--engine", engine, "--pipeline_name", cfg.name], env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    nodes = latest_run(cfg.metadata_path, cfg.name)
    states = {n: r.state for n, r in nodes.items()}
    assert set(states.values()) == {"COMPLETE"}, states
    assert len(states) == 13  # 10 components and 3 resolvers
    assert nodes["Evaluator"].output_property("blessing", "blessed") == 1
    [version] = os.listdir(cfg.model_base_path)
    assert (Path(cfg.model_base_path) / version / "saved_model.pb").is_file()
