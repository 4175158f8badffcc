"""Run the pipeline with LocalDagRunner (MLMD on SQLite, Beam DirectRunner).

Works with the TFX CLI from the repo root:

    tfx pipeline create --engine local --pipeline_path runners/local_runner.py
    tfx run create --engine local --pipeline_name taxi-pipeline
"""

from tfx import v1 as tfx

from pipeline.config import load_config
from pipeline.pipeline import create_pipeline


def main() -> None:
    tfx.orchestration.LocalDagRunner().run(create_pipeline(load_config("local")))


if __name__ == "__main__":
    main()
