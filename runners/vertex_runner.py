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
from pathlib import Path

from pipeline.config import load_config
from pipeline.vertex import compile_vertex


def main() -> None:
    # The TFX CLI runs this file as a script: the profile comes from the environment,
    # and the CLI redirects the output file into its own directory.
    cfg = load_config(os.environ.get("TFXP_PROFILE", "vertex"))
    compile_vertex(cfg, Path.cwd() / f"{cfg.name}.json")


if __name__ == "__main__":
    main()
