"""Server options, models.config parsing (the repo's own file too), batching parameters, CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.commands import build_options
from serving.config import (
    BatchingOptions,
    ServerOptions,
    VersionPolicy,
    load_model_config_file,
    parse_batching_parameters,
    parse_model_config,
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
        ("model_config_list { config { name: 'a' bse_path: '/x' } }", "not a text-format ModelServerConfig"),
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
    with pytest.raises(ValueError, match=fragment):
        parse_model_config(text, "models.config")


def test_the_repos_production_configs_parse() -> None:
    (taxi,) = load_model_config_file(SERVING_DIR / "models.config")
    assert taxi.name == "taxi" and taxi.base_path == "/models/taxi"
    batching = parse_batching_parameters((SERVING_DIR / "batching.config").read_text(), "batching.config")
    assert batching.max_batch_size >= 8
    monitoring = (SERVING_DIR / "monitoring.config").read_text()
    assert 'path: "/monitoring/prometheus/metrics"' in monitoring and "enable: true" in monitoring


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
