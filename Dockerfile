# The pipeline image: what Vertex AI Pipelines runs each component in, and the
# SDK container Dataflow workers use for the Beam steps.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/taxi-pipeline:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/taxi-pipeline:TAG
#
# The base is the official TFX image of the same release as the lock
# (TFX 1.16.0 on Python 3.10). The lock is installed on top so every executor
# runs exactly the versions tested here, then the project itself, so the
# Transform and Trainer entry points (models.preprocessing.preprocessing_fn,
# models.trainer.run_fn), the custom components and the Evaluator's custom
# TFMA metrics (pipeline.slice_gate) import.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# The project lives at /pipeline: profiles name files here (e.g. the schema), and
# the compile fingerprints this checkout's copy of them (pipeline.pipeline.host_copy).
WORKDIR /pipeline
# The package installs into site-packages; a profile's relative paths (schema/,
# models/features.yaml, data/, outputs/) mean these copies, from any directory.
ENV TFXP_PROJECT_ROOT=/pipeline
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir -r requirements.lock

COPY setup.py pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY models/ models/
COPY runners/ runners/
COPY serving/ serving/
COPY review/ review/
COPY validation/ validation/
COPY monitoring/ monitoring/
COPY schema/ schema/
RUN python -m pip install --no-cache-dir --no-deps . \
 && python -c "import models.trainer, models.preprocessing, pipeline.pipeline, pipeline.slice_gate, pipeline.cli"
