"""tfx-production-pipeline: the project's packages and the ``tfxp`` console script.

Dependencies are pinned in requirements.lock (installed by `make`); the ranges
here only say what the code needs.
"""

from setuptools import find_packages, setup

setup(
    name="tfx-production-pipeline",
    version="0.1.0",
    description="A production-grade TFX pipeline: taxi CSV to a served, monitored model",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "monitoring", "monitoring.*", "models", "models.*", "runners", "runners.*", "serving", "serving.*", "review", "review.*", "validation", "validation.*"]),
    package_data={"pipeline": ["profiles/*.yaml"], "models": ["features.yaml"], "review": ["nbextension/*/*.js"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "dill",
        "typer",
        "rich",
        "PyYAML",
        "matplotlib",
        "nbclassic",
        "scikit-learn",
    ],
    entry_points={"console_scripts": ["tfxp=pipeline.cli:main"]},
)
