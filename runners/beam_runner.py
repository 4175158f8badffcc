"""Run the pipeline with BeamDagRunner: each component is a step of one Beam job.

Works with the TFX CLI from the repo root:

    tfx pipeline create --engine beam --pipeline_path runners/beam_runner.py
    tfx run create --engine beam --pipeline_name taxi-pipeline

``TFXP_PROFILE`` selects the config profile (a name or a YAML path; default ``local``).
"""

import os

# BeamDagRunner is not in tfx.v1's public API in TFX 1.16.
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from pipeline.config import load_config
from pipeline.pipeline import create_pipeline


def main() -> None:
    # The TFX CLI runs this file as a script: the profile comes from the environment.
    cfg = load_config(os.environ.get("TFXP_PROFILE", "local"))
    BeamDagRunner().run(create_pipeline(cfg))


if __name__ == "__main__":
    main()
