"""Compile the pipeline for Vertex AI Pipelines with KubeflowV2DagRunner.

Works with the TFX CLI from the repo root (no --build-image: the image is
built from the Dockerfile and named in the profile's vertex.image_uri):

    tfx pipeline create --engine vertex --pipeline_path runners/vertex_runner.py
    tfx pipeline compile --engine vertex --pipeline_path runners/vertex_runner.py
    tfx run create --engine vertex --pipeline_name taxi-pipeline --project P --region R

``TFXP_PROFILE`` selects the config profile (a name or a YAML path; default ``vertex``).
Run directly, it writes ``taxi-pipeline.json`` in the working directory.
"""

import os

from tfx import v1 as tfx

from pipeline.config import load_config
from pipeline.pipeline import create_pipeline, runtime_parameter_defaults


def main() -> None:
    # The TFX CLI runs this file as a script: the profile comes from the environment.
    cfg = load_config(os.environ.get("TFXP_PROFILE", "vertex"))
    cfg.vertex.check(cfg.output_dir)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=cfg.vertex.image_uri),
        output_filename=f"{cfg.name}.json",
    )
    runner.run(create_pipeline(cfg), parameter_values=runtime_parameter_defaults(cfg))


if __name__ == "__main__":
    main()
