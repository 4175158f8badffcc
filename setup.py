"""tfx-production-pipeline: the project's packages and the ``tfxp`` console script.

Every distribution the code imports is declared here, as a range: the exact,
tested versions are pinned in requirements.lock (installed by `make`). Extras:

- ``serving``: ``tfxp serve`` / ``tfxp predict`` (the TF Serving-compatible server and client);
- ``notebook``: ``make notebook`` (the classic notebook UI where TFMA's widgets draw);
- ``mlflow``: MLflow tracking (``tracking.mlflow_uri``, ``tfxp runs export``);
- ``dev``: all three, plus what the tests use.

tests/unit/test_packaging.py checks that each import in the code has its
distribution declared here, and that the lock satisfies every range.
"""

from setuptools import find_packages, setup

SERVING = [
    "starlette>=1.0,<2",
    "uvicorn>=0.30,<1",
    "httpx>=0.27,<1",
    "prometheus_client>=0.20,<1",
    "psutil>=5.9,<8",
]
NOTEBOOK = ["nbclassic>=1.1,<2"]
# The MLflow client and what its SQLite store needs (SQLAlchemy, alembic).
MLFLOW = ["mlflow-skinny>=3.17,<4", "SQLAlchemy>=2,<3", "alembic>=1.13,<2"]
DEV = [
    "pytest>=8,<10",
    "nbclient>=0.10,<1",
    "nbformat>=5.10,<6",
    "nbconvert>=7,<8",
    "ipykernel>=6,<8",
    "pillow>=10,<13",
    "websockets>=13,<17",
    "importlib_metadata>=6,<10",
    "packaging>=23",
    "pyarrow>=10,<11",
    # `make test` lints and type-checks before the tests.
    "ruff>=0.17,<0.18",
    "mypy>=2.4,<2.5",
]

setup(
    name="tfx-production-pipeline",
    version="0.1.0",
    description="A production-grade TFX pipeline: taxi CSV to a served, monitored model",
    python_requires=">=3.10,<3.11",
    packages=find_packages(
        include=[
            "pipeline",
            "pipeline.*",
            "monitoring",
            "monitoring.*",
            "models",
            "models.*",
            "runners",
            "runners.*",
            "serving",
            "serving.*",
            "review",
            "review.*",
            "validation",
            "validation.*",
            "tracking",
            "tracking.*",
        ]
    ),
    package_data={"pipeline": ["profiles/*.yaml"], "models": ["features.yaml"], "review": ["nbextension/*/*.js"]},
    install_requires=[
        # The TFX 1.16 family: the kfp extra compiles for Vertex AI (KubeflowV2DagRunner).
        "tfx[kfp]>=1.16,<1.17",
        "tensorflow>=2.16,<2.17",
        "tf_keras>=2.16,<2.17",
        "tensorflow-transform>=1.16,<1.17",
        "tensorflow-data-validation>=1.16,<1.17",
        "tensorflow-model-analysis>=0.47,<0.48",
        "tensorflow-metadata>=1.16,<1.17",
        "tfx-bsl>=1.16,<1.17",
        "ml-metadata>=1.16,<1.17",
        "tensorflow-serving-api>=2.16,<2.17",
        "apache-beam[gcp]>=2.47,<3",
        # tfx_bsl 1.16 imports dill, which Beam >= 2.65 no longer brings.
        "dill>=0.3.1",
        "google-cloud-aiplatform>=1.6.2,<2",
        "google-auth>=2,<3",
        "protobuf>=3.20.3,<4",
        "grpcio>=1.28.1,<2",
        "absl-py>=0.9,<2",
        "numpy>=1.23,<2",
        "pandas>=1.5,<2",
        "scipy>=1.10,<1.13",
        "scikit-learn>=1.5,<1.6",
        "matplotlib>=3.7,<4",
        "ipython>=7,<8",
        "PyYAML>=6,<7",
        "pydantic>=2,<3",
        "typing_extensions>=4.6,<5",
        # Kubeflow Pipelines 2.x: kfp.Client for `tfxp submit --target kubeflow`.
        "kfp>=2.5,<2.6",
        "kfp-server-api>=2,<3",
        "urllib3>=1.26,<2",
        # Hyperparameter search (TFX's Tuner, models/tuning.py).
        "keras-tuner>=1.4,<1.5",
        "typer>=0.12,<1",
        "click>=8,<9",
        "rich>=13,<16",
    ],
    extras_require={
        "serving": SERVING,
        "notebook": NOTEBOOK,
        "mlflow": MLFLOW,
        "dev": SERVING + NOTEBOOK + MLFLOW + DEV,
    },
    entry_points={"console_scripts": ["tfxp=pipeline.cli:main"]},
)
