"""Run the pipeline with LocalDagRunner (MLMD on SQLite, Beam DirectRunner).

Works with the TFX CLI from the repo root:

    tfx pipeline create --engine local --pipeline_path runners/local_runner.py
    tfx run create --engine local --pipeline_name taxi-pipeline

``TFXP_PROFILE`` selects the config profile (a name or a YAML path; default ``local``).
"""

import os

from tfx import v1 as tfx

from pipeline.config import load_config
from pipeline.pipeline import create_pipeline


def main() -> None:
    # The TFX CLI runs this file as a script: the profile comes from the environment.
    cfg = load_config(os.environ.get("TFXP_PROFILE", "local"))
    tfx.orchestration.LocalDagRunner().run(create_pipeline(cfg))


if __name__ == "__main__":
    main()
