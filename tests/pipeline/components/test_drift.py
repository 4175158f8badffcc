"""DriftValidator's executor when no resolver feeds it a baseline (data.span_resolution: none)."""

import shutil

from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import json_utils

from pipeline.components.drift import DRIFT_PROPERTY, DriftValidatorExecutor
from pipeline.config import PROJECT_ROOT


def test_an_unwired_baseline_passes_like_a_first_span(tmp_path):
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    (tmp_path / "schema").mkdir()
    shutil.copy(PROJECT_ROOT / "schema" / "schema.pbtxt", tmp_path / "schema" / "schema.pbtxt")
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "statistics")
    statistics.split_names = artifact_utils.encode_split_names(["train", "eval"])
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")

    DriftValidatorExecutor().Do(
        {"statistics": [statistics], "schema": [schema]},  # no baseline_statistics key at all
        {"anomalies": [anomalies]},
        {"include_split_pairs": json_utils.dumps([("train", "train")])},
    )

    assert anomalies.get_json_value_custom_property(DRIFT_PROPERTY) == {
        "span": 0, "baseline_span": None, "split": "train", "features": {}
    }
