"""Run the pipeline with BeamDagRunner: each component is a step of one Beam job.

Works with the TFX CLI from the repo root:

    tfx pipeline create --engine beam --pipeline_path runners/beam_runner.py
    tfx run create --engine beam --pipeline_name taxi-pipeline
"""

# BeamDagRunner is not in tfx.v1's public API in TFX 1.16.
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from pipeline.config import load_config
from pipeline.pipeline import create_pipeline


def main() -> None:
    BeamDagRunner().run(create_pipeline(load_config("local")))


if __name__ == "__main__":
    main()
