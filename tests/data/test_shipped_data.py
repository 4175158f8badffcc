"""data/ against schema/: the pipeline's own ExampleGen and StatisticsGen, validated by TFDV."""

import pytest
import tensorflow_data_validation as tfdv

from pipeline.config import load_config
from pipeline.results import latest_run
from pipeline.schema import infer_schema


@pytest.fixture(scope="module")
def proposal(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema")
    cfg = load_config("local", {"output_dir": str(out)})
    return cfg, infer_schema(cfg, out / "proposed_schema.pbtxt")


def test_shipped_data_has_no_anomalies_against_the_curated_schema(proposal):
    cfg, _ = proposal
    nodes = latest_run(cfg.metadata_path, f"{cfg.name}-schema")
    schema = tfdv.load_schema_text(cfg.data.schema_file)
    stats_uri = nodes["StatisticsGen"].output_uri("statistics")
    counts = {}
    for split in ("train", "eval", "test"):
        stats = tfdv.load_stats_binary(f"{stats_uri}/Split-{split}/FeatureStats.pb")
        counts[split] = stats.datasets[0].num_examples
        anomalies = tfdv.validate_statistics(stats, schema)
        assert dict(anomalies.anomaly_info) == {}, f"{split}: {anomalies.anomaly_info}"
    # 70/15/15 by hash of the trip start time: close to, not exactly, the buckets.
    assert sum(counts.values()) == 15002
    assert abs(counts["test"] / 15002 - cfg.data.test_fraction) < 0.02, counts
    assert abs(counts["eval"] / 15002 - 3 / 20) < 0.02, counts


def test_the_accuracy_floor_is_above_the_majority_class_rate():
    """A model that always says "no big tip" must not be blessed on the shipped data."""
    from tests.conftest import read_rows

    header, rows = read_rows()
    tips, fare = header.index("tips"), header.index("fare")
    positive = sum(float(r[tips] or 0) - 0.2 * float(r[fare] or 0) > 1e-3 for r in rows) / len(rows)
    majority = max(positive, 1 - positive)
    assert round(majority, 3) == 0.775
    assert load_config("local").eval.floors["binary_accuracy"] > majority


def test_schema_infer_writes_a_reviewable_proposal(proposal):
    cfg, result = proposal
    text = result.path.read_text()
    assert text.startswith("# Proposed by `tfxp schema infer`")
    assert 'name: "payment_type"' in text
    # The curated schema adds value ranges that inference does not: the diff shows them.
    assert "-  int_domain {" in result.diff.splitlines()
    assert '+  domain: "company"' in result.diff.splitlines()  # inference closes the open set
    assert "schema/schema.pbtxt" in result.diff.splitlines()[0]
