"""The loop's watch, end to end: serve the pipeline's model with request logging, send a normal
batch and then a shifted one over REST on loopback, and `tfxp monitor` must flag only the shifted feature."""

from __future__ import annotations

import json
import random
import urllib.request

import pytest
from typer.testing import CliRunner

from models.features import load_spec
from monitoring.demo import serving_instances
from pipeline.cli import app
from tests.conftest import read_rows

pytestmark = pytest.mark.e2e

# Rows per batch: bounded; sent 50 rows a request. Fewer would make a
# 77-valued feature drift by sampling noise alone.
BATCH = 1000


def _send(url: str, instances: list[dict], request_id: str = "") -> list[str]:
    ids = []
    for i in range(0, len(instances), 50):
        body = json.dumps({"instances": instances[i : i + 50]}).encode()
        headers = {"Content-Type": "application/json", **({"X-Request-Id": f"{request_id}-{i}"} if request_id else {})}
        request = urllib.request.Request(f"{url}/v1/models/taxi:predict", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as r:
            assert len(json.load(r)["predictions"]) == len(instances[i : i + 50])
            ids.append(r.headers["X-Request-Id"])
    return ids


@pytest.fixture(scope="module")
def served_traffic(trained_run, tmp_path_factory):
    """A normal batch, then one with fares tripled, logged by a real server over loopback."""
    from serving.config import RequestLogOptions, ServerOptions, single_model
    from serving.server import start_server

    log_dir = tmp_path_factory.mktemp("request_log")
    header, rows = read_rows()
    handle = start_server(
        ServerOptions(
            models=single_model("taxi", trained_run.cfg.model_base_path),
            port=0,
            rest_api_port=0,
            request_log=RequestLogOptions(str(log_dir), 1.0),
        )
    )
    try:
        # Random rides: the file is ordered, so a run of consecutive rows is itself skewed.
        sample = random.Random(0).sample(rows, 2 * BATCH)
        normal_ids = _send(handle.rest_url, serving_instances(load_spec(), header, sample[:BATCH]), "normal")
        shifted_ids = _send(handle.rest_url, serving_instances(load_spec(), header, sample[BATCH:], fare_factor=3.0))
        handle.core.request_log.flush()
    finally:
        handle.stop()
    return {"log_dir": log_dir, "normal_ids": normal_ids, "shifted_ids": shifted_ids, "cfg": trained_run.cfg}


def _monitor(traffic, *args: str):
    result = CliRunner().invoke(
        app, ["monitor", "--output", traffic["cfg"].output_dir, "--request-log", str(traffic["log_dir"]), *args]
    )
    return result


def test_request_ids_are_the_clients_or_the_servers_and_are_logged(served_traffic):
    from monitoring.window import read_request_log

    assert served_traffic["normal_ids"] == [f"normal-{i}" for i in range(0, BATCH, 50)]  # the client's, echoed
    assert all(len(i) == 32 for i in served_traffic["shifted_ids"])  # made by the server
    rows = read_request_log(served_traffic["log_dir"]).rows
    assert len(rows) == 2 * BATCH
    assert {r.request_id for r in rows} == set(served_traffic["normal_ids"]) | set(served_traffic["shifted_ids"])


def test_the_window_is_chosen_one_way(served_traffic):
    result = _monitor(served_traffic, "--rows", str(BATCH), "--since", "0")
    assert result.exit_code == 4 and "choose the window one way" in result.output
    result = _monitor(served_traffic, "--since", "0", "--json")
    assert json.loads(result.output)["window"]["rows"] == 2 * BATCH


def test_the_shifted_batch_is_flagged_on_the_shifted_feature_only(served_traffic, tmp_path):
    metrics = tmp_path / "textfile" / "tfxp.prom"
    page = tmp_path / "monitor.html"
    result = _monitor(
        served_traffic, "--rows", str(BATCH), "--json", "--metrics-file", str(metrics), "--html", str(page)
    )
    assert result.exit_code == 5, result.output
    data = json.loads(result.output)
    skew = {f["feature"]: f for f in data["skew"][0]["features"]}
    drift = {f["feature"]: f for f in data["drift"]}
    assert [f for f, d in skew.items() if d["exceeded"]] == ["fare"]
    assert [f for f, d in drift.items() if d["exceeded"]] == ["fare"]
    assert skew["fare"]["distance"] > 0.3 and drift["fare"]["distance"] > 0.3
    assert data["verdict"] == "alert" and data["alerts"][0].startswith("skew v")
    assert 'tfxp_monitor_alert{model="taxi"} 1' in metrics.read_text()
    assert "fare" in page.read_text() and "SKEW" in page.read_text()
    history = served_traffic["cfg"].output_dir + "/monitoring/history.jsonl"
    assert json.loads(open(history).read().splitlines()[-1])["alerts"] == data["alerts"]


def test_the_normal_window_alone_passes(served_traffic):
    from monitoring.window import read_request_log

    rows = read_request_log(served_traffic["log_dir"]).rows
    until = rows[BATCH - 1].timestamp
    # The normal batch is the window before the shifted one: judge it through --since on a log cut at it.
    import shutil

    cut = served_traffic["log_dir"].parent / "normal_only"
    cut.mkdir(exist_ok=True)
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(cut / "requests-normal.tfrecord")) as w:
        for r in tf.data.TFRecordDataset([str(p) for p in sorted(served_traffic["log_dir"].glob("requests-*"))]):
            ex = tf.train.Example.FromString(r.numpy())
            if ex.features.feature["serving.timestamp_micros"].int64_list.value[0] / 1e6 <= until:
                w.write(r.numpy())
    result = CliRunner().invoke(
        app, ["monitor", "--output", served_traffic["cfg"].output_dir, "--request-log", str(cut)]
    )
    shutil.rmtree(cut)
    assert result.exit_code == 0, result.output
    assert "Verdict: OK: every distance within its threshold" in result.output
    assert "no drift computed" in result.output  # nothing before the first batch


def test_a_small_window_gets_no_verdict_and_no_log_is_one_line(served_traffic, tmp_path):
    result = _monitor(served_traffic, "--rows", "20")
    assert result.exit_code == 6 and "fewer than monitoring.min_window_rows=300: no verdict" in " ".join(
        result.output.split()
    )
    result = CliRunner().invoke(
        app, ["monitor", "--output", served_traffic["cfg"].output_dir, "--request-log", str(tmp_path)]
    )
    assert result.exit_code == 4 and "holds no request log" in result.output


def test_rows_of_a_version_ml_metadata_does_not_know_get_no_skew(served_traffic, tmp_path):
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(tmp_path / "requests-other.tfrecord")) as w:
        for r in tf.data.TFRecordDataset([str(p) for p in sorted(served_traffic["log_dir"].glob("requests-*"))]):
            ex = tf.train.Example.FromString(r.numpy())
            ex.features.feature["serving.model_version"].int64_list.value[:] = [42]
            w.write(ex.SerializeToString())
    result = CliRunner().invoke(
        app, ["monitor", "--output", served_traffic["cfg"].output_dir, "--request-log", str(tmp_path), "--json"]
    )
    data = json.loads(result.output)
    [skew] = data["skew"]
    assert skew["version"] == 42 and skew["features"] == []
    assert "version 42 is not in ML Metadata" in skew["note"] and "no skew computed" in skew["note"]
