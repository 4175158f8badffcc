"""Server options, models.config and monitoring.config parsing (the repo's files too), batching parameters,
gRPC channel arguments, CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.commands import build_options
from serving.config import (
    PROMETHEUS_PATH,
    BatchingOptions,
    ServerOptions,
    VersionPolicy,
    load_model_config_file,
    load_monitoring_config_file,
    parse_batching_parameters,
    parse_grpc_channel_arguments,
    parse_model_config,
    parse_monitoring_config,
    single_model,
)

SERVING_DIR = Path(__file__).resolve().parents[2] / "serving"


def test_version_policies_select_like_tf_serving() -> None:
    on_disk = [3, 10, 7, 1]
    assert VersionPolicy().select(on_disk) == {10}
    assert VersionPolicy("latest", num_versions=2).select(on_disk) == {10, 7}
    assert VersionPolicy("all").select(on_disk) == {1, 3, 7, 10}
    assert VersionPolicy("specific", versions=(3, 4)).select(on_disk) == {3}


def test_model_config_text_format() -> None:
    text = """
    model_config_list {
      config {
        name: "taxi" base_path: "/models/taxi" model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
        version_labels { key: "canary" value: 2 }
      }
      config { name: "other" base_path: "/models/other" model_platform: "tensorflow"
               model_version_policy { latest { num_versions: 2 } } }
    }"""
    taxi, other = parse_model_config(text, "/etc/models.config")
    assert (taxi.name, taxi.base_path, taxi.policy) == (
        "taxi",
        "/models/taxi",
        VersionPolicy("specific", versions=(1, 2)),
    )
    assert dict(taxi.labels) == {"stable": 1, "canary": 2}
    assert other.policy == VersionPolicy("latest", num_versions=2)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/x' model_platform: 'pytorch' } }",
            "model_platform",
        ),
        (
            "model_config_list { config { name: 'a' bse_path: '/x' } }",
            "models.config: Error parsing text-format tensorflow.serving.ModelServerConfig: 1:40 : "
            'Message type "tensorflow.serving.ModelConfig" has no field named "bse_path".',
        ),
        ("model_config_list { }", "no config entries"),
        ("model_config_list { config { name: 'a/b' base_path: '/x' } }", "model name"),
        (
            "model_config_list { config { name: 'a' base_path: '/x' } config { name: 'a' base_path: '/y' } }",
            "unique",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/x' "
            "version_labels { key: 'b-c' value: 1 } } }",
            "labels match",
        ),
    ],
)
def test_bad_model_configs_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_model_config(text, "models.config")
    assert fragment in str(info.value)


def test_the_repos_production_configs_parse() -> None:
    (taxi,) = load_model_config_file(SERVING_DIR / "models.config")
    assert taxi.name == "taxi" and taxi.base_path == "/models/taxi"
    batching = parse_batching_parameters((SERVING_DIR / "batching.config").read_text(), "batching.config")
    assert batching.max_batch_size >= 8
    assert load_monitoring_config_file(SERVING_DIR / "monitoring.config") == "/monitoring/prometheus/metrics"


def test_batching_parameters_file() -> None:
    text = (
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 500 }\n# comment\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 100 }\n"
    )
    assert parse_batching_parameters(text) == BatchingOptions(64, 500, 2)
    with pytest.raises(ValueError, match="unknown batching parameter 'max_batch'"):
        parse_batching_parameters("max_batch { value: 1 }")
    with pytest.raises(ValueError, match="cannot parse"):
        parse_batching_parameters("max_batch_size: 3")


def test_options_validate_fields() -> None:
    models = single_model("taxi", "/tmp/x")
    with pytest.raises(ValueError, match="max_queued_requests"):
        ServerOptions(models=models, max_queued_requests=0)
    with pytest.raises(ValueError, match="rest_api_port"):
        ServerOptions(models=models, rest_api_port=70000)
    with pytest.raises(ValueError, match="--model_config_file"):
        ServerOptions()


def test_cli_flags_build_options(tmp_path: Path) -> None:
    opts = build_options(
        model_base_path=str(tmp_path / "taxi"), rest_api_port=0, enable_batching=True, max_batch_size=16
    )
    assert opts.models[0].name == "taxi" and opts.models[0].base_path == str(tmp_path / "taxi")
    assert opts.rest_api_port is None  # 0 disables REST, as in TF Serving
    assert opts.enable_batching and opts.batching.max_batch_size == 16
    assert opts.host == "127.0.0.1" and opts.port == 8500
    with pytest.raises(ValueError, match="--model_base_path is required"):
        build_options(model_name="taxi")
    with pytest.raises(ValueError, match="not both"):
        build_options(model_name="taxi", model_base_path="/x", model_config_file="/y")


def test_monitoring_config_sets_the_prometheus_path_as_tf_serving_reads_it() -> None:
    # TF Serving's own testdata/monitoring_config.txt, commas and all.
    tf_serving_testdata = (
        'prometheus_config: {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}'
    )
    assert parse_monitoring_config(tf_serving_testdata) == PROMETHEUS_PATH
    assert parse_monitoring_config('prometheus_config { enable: true path: "/my/metrics" }') == "/my/metrics"
    assert parse_monitoring_config("prometheus_config { enable: true }") == PROMETHEUS_PATH
    assert parse_monitoring_config('prometheus_config { enable: false path: "/my/metrics" }') is None
    assert parse_monitoring_config("") is None  # TF Serving: no metrics endpoint
    with pytest.raises(ValueError) as info:
        parse_monitoring_config("prometheus_config { enabled: true }", "m.config")
    assert str(info.value) == (
        "m.config: Error parsing text-format tensorflow.serving.MonitoringConfig: 1:21 : "
        'Message type "tensorflow.serving.PrometheusConfig" has no field named "enabled".'
    )
    with pytest.raises(ValueError, match="outside /v1/"):
        ServerOptions(models=single_model("taxi", "/tmp/x"), prometheus_path="/v1/models/metrics")


def test_grpc_channel_arguments_convert_int32_values_as_tf_serving_does() -> None:
    assert parse_grpc_channel_arguments("grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb") == (
        ("grpc.max_connection_age_ms", 2000),
        ("grpc.lb_policy_name", "grpclb"),
    )
    # tensorflow's safe_strto32: spaces around, a minus sign, int32 range; anything else stays a string.
    assert parse_grpc_channel_arguments("a= -5 ,b=2147483648,c=+1,d=,") == (
        ("a", -5),
        ("b", "2147483648"),
        ("c", "+1"),
        ("d", ""),
    )
    assert parse_grpc_channel_arguments("") == ()
    with pytest.raises(ValueError, match="'grpc.max_receive_message_length' is not key=value"):
        parse_grpc_channel_arguments("grpc.max_receive_message_length")


def test_new_flags_build_options(tmp_path: Path) -> None:
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/my/metrics" }')
    opts = build_options(
        model_base_path=str(tmp_path / "taxi"),
        grpc_socket_path="/tmp/tfxp.sock",
        grpc_channel_arguments="grpc.max_receive_message_length=1024",
        monitoring_config_file=str(monitoring),
        prefer_tflite_model="false",
        enable_profiler="false",  # asks for nothing: accepted
    )
    assert opts.grpc_socket_path == "/tmp/tfxp.sock"
    assert opts.grpc_channel_arguments == (("grpc.max_receive_message_length", 1024),)
    assert opts.prometheus_path == "/my/metrics"
    assert build_options(model_base_path=str(tmp_path / "taxi")).prometheus_path == PROMETHEUS_PATH
    with pytest.raises(ValueError, match="unix socket paths hold at most 107 bytes"):
        build_options(model_base_path=str(tmp_path / "taxi"), grpc_socket_path="/tmp/" + "s" * 120)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"prefer_tflite_model": "true"}, "--prefer_tflite_model: TensorFlow Lite models are out of scope"),
        ({"num_tflite_pools": 4}, "--num_tflite_pools tunes TensorFlow Lite serving."),
        ({"num_tflite_interpreters_per_pool": 1}, "--num_tflite_interpreters_per_pool tunes TensorFlow Lite"),
        ({"enable_profiler": "1"}, "--enable_profiler: the TensorFlow profiler service is out of scope"),
        ({"enable_profiler": "yes"}, "--enable_profiler='yes' is invalid: use true or false"),
    ],
)
def test_out_of_scope_flags_stop_start_up(flags: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        build_options(model_base_path=str(tmp_path / "taxi"), **flags)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_malformed_model_config_stops_build_options(tmp_path: Path) -> None:
    bad = tmp_path / "bad_model_config.txt"
    bad.write_text("improperly formatted file")  # TF Serving's testdata/bad_model_config.txt
    with pytest.raises(ValueError) as info:
        build_options(model_config_file=str(bad))
    assert str(info.value) == (
        f"{bad}: Error parsing text-format tensorflow.serving.ModelServerConfig: 1:1 : "
        'Message type "tensorflow.serving.ModelServerConfig" has no field named "improperly".'
    )
