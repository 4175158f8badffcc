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
    for split in ("train", "eval"):
        stats = tfdv.load_stats_binary(f"{stats_uri}/Split-{split}/FeatureStats.pb")
        assert stats.datasets[0].num_examples > 2000
        anomalies = tfdv.validate_statistics(stats, schema)
        assert dict(anomalies.anomaly_info) == {}, f"{split}: {anomalies.anomaly_info}"


def test_schema_infer_writes_a_reviewable_proposal(proposal):
    cfg, result = proposal
    text = result.path.read_text()
    assert text.startswith("# Proposed by `tfxp schema infer`")
    assert 'name: "payment_type"' in text
    # The curated schema adds value ranges that inference does not: the diff shows them.
    assert "-  int_domain {" in result.diff.splitlines()
    assert '+  domain: "company"' in result.diff.splitlines()  # inference closes the open set
    assert "schema/schema.pbtxt" in result.diff.splitlines()[0]
