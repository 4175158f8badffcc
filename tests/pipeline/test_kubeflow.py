"""Kubeflow Pipelines 2.x: the compiled YAML as KFP reads it, Beam's options, and `tfxp submit` against a local fake."""

import json
import socket

import kfp
import pytest
import yaml
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, PortableOptions, StandardOptions
from kfp import compiler, dsl
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.kubeflow import compile_kubeflow
from pipeline.pipeline import create_pipeline
from tests.pipeline.fake_kfp import FakeKfp
from tests.pipeline.test_vertex import BEAM_COMPONENTS, _task_node

IMAGE = "registry.example.com/tfx/taxi-pipeline:v1"
PORTABLE = {
    "beam.runner": "PortableRunner",
    "beam.job_endpoint": "flink-jobserver.flink:8099",
    "beam.environment_type": "EXTERNAL",
    "beam.environment_config": "localhost:50000",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    cfg = load_config("kubeflow")
    path = compile_kubeflow(cfg, tmp_path_factory.mktemp("kubeflow") / "taxi-pipeline.yaml")
    return cfg, path, yaml.safe_load(path.read_text())


@pytest.fixture
def no_kfp_env(monkeypatch):
    for name in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_SA_TOKEN_PATH", "KF_PIPELINES_COOKIE"):
        monkeypatch.delenv(name, raising=False)


def _beam_args(spec, component):
    """The Beam options TFX appends to a step's container args (its own flags take a separate value)."""
    args = spec["deploymentSpec"]["executors"][f"{component}_executor"]["container"]["args"]
    return [a for a in args if a.startswith("--") and "=" in a]


def test_cli_compiles_the_kubeflow_profile_by_default(compiled, tmp_path):
    _, _, spec = compiled
    out = tmp_path / "taxi-pipeline.yaml"
    result = CliRunner().invoke(app, ["compile", "--target", "kubeflow", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Compiled taxi-pipeline for Kubeflow Pipelines to {out}" in result.output
    assert "Runtime parameters: data_root, train_args" in result.output
    assert yaml.safe_load(out.read_text())["root"] == spec["root"]


def test_kfp_loads_the_yaml_with_its_parameters_and_pipeline_root(compiled):
    _, path, spec = compiled
    component = kfp.components.load_component_from_file(str(path))
    assert component.name == "taxi-pipeline"
    inputs = component.component_spec.inputs
    assert inputs["data_root"].default == "s3://mlpipeline/taxi-data"
    assert json.loads(inputs["train_args"].default) == {"num_steps": 1000}
    assert spec["defaultPipelineRoot"] == "s3://mlpipeline/taxi-pipeline/tfx_root"
    assert spec["schemaVersion"] == "2.1.0"


def test_the_yaml_nests_in_a_pipeline_that_kfps_compiler_compiles(compiled, tmp_path):
    _, path, spec = compiled
    taxi = kfp.components.load_component_from_file(str(path))

    @dsl.pipeline(name="nightly")
    def nightly(data_root: str = "s3://mlpipeline/nightly"):
        taxi(data_root=data_root, train_args='{"num_steps": 200}')

    out = tmp_path / "nightly.yaml"
    compiler.Compiler().compile(nightly, str(out))
    outer = yaml.safe_load(out.read_text())
    task = outer["root"]["dag"]["tasks"]["taxi-pipeline"]
    assert task["inputs"]["parameters"]["data_root"] == {"componentInputParameter": "data_root"}
    assert task["inputs"]["parameters"]["train_args"] == {"runtimeValue": {"constant": '{"num_steps": 200}'}}
    inner = outer["components"][task["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == set(spec["root"]["dag"]["tasks"])


def test_every_component_is_a_task_with_the_local_dags_edges(compiled):
    cfg, _, spec = compiled
    tasks = spec["root"]["dag"]["tasks"]
    kfp_edges = {(_task_node(up), _task_node(name)) for name, t in tasks.items() for up in t.get("dependentTasks", [])}
    components = create_pipeline(cfg).components
    assert {_task_node(t) for t in tasks} == {c.id for c in components}
    assert kfp_edges == {(u.id, c.id) for c in components for u in c.upstream_nodes}
    assert ("AnomaliesGate", "Transform") in kfp_edges and ("Evaluator", "Pusher") in kfp_edges
    assert len(tasks) == 10


def test_every_step_is_a_container_as_kfps_backend_requires(compiled):
    # KFP's backend (backend/src/v2/compiler/argocompiler/dag.go) runs container and
    # importer executors; a resolver fails the run ("resolver executors not
    # implemented"), a customJob is "Google Cloud only".
    _, _, spec = compiled
    kinds = {name: next(iter(e)) for name, e in spec["deploymentSpec"]["executors"].items()}
    assert set(kinds.values()) == {"container"}, kinds
    assert "TrainingWindow" not in kinds and not [k for k in kinds if "Resolver" in k or "PreviousSpan" in k]


def test_without_resolvers_drift_and_the_baseline_are_not_wired(compiled):
    cfg, _, _ = compiled
    components = {c.id: c for c in create_pipeline(cfg).components}
    assert "baseline_statistics" not in components["DriftValidator"].inputs
    assert "baseline_model" not in components["Evaluator"].inputs
    with pytest.raises(ValueError, match="data.training_spans=2 is invalid: a window of several spans needs"):
        load_config("kubeflow", {"data.training_spans": 2})


def test_steps_run_the_image_and_push_under_the_pipeline_root(compiled):
    _, _, spec = compiled
    executors = spec["deploymentSpec"]["executors"]
    containers = {name.removesuffix("_executor"): e["container"] for name, e in executors.items() if "container" in e}
    assert {c["image"] for c in containers.values()} == {IMAGE}
    # No Vertex-only component: the stock Trainer and our filesystem Pusher.
    classes = {name: c["args"][c["args"].index("--executor_class_path") + 1] for name, c in containers.items()}
    assert classes["Trainer"] == "tfx.components.trainer.executor.GenericExecutor"
    assert classes["Pusher"] == "pipeline.components.pusher.AtomicPushExecutor"
    assert not [c for c in classes.values() if "google_cloud_ai_platform" in c]
    push = json.loads(
        spec["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]["push_destination"]["runtimeValue"]["constant"]
    )
    assert push["filesystem"]["base_directory"] == "s3://mlpipeline/taxi-pipeline/serving_model/taxi"


def test_beam_steps_run_in_their_pod_over_all_its_cores(compiled):
    _, _, spec = compiled
    for component in BEAM_COMPONENTS:
        args = _beam_args(spec, component)
        assert args == [
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=0",
            f"--sdk_container_image={IMAGE}",  # the image holds the code: TFX stages no sdist of itself
        ], component
        direct = PipelineOptions(args).view_as(DirectOptions)
        assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 0)
        assert PipelineOptions(args).view_as(StandardOptions).runner is None  # Beam's default, the DirectRunner


def test_a_portable_profile_points_beam_at_a_flink_cluster(tmp_path):
    path = compile_kubeflow(load_config("kubeflow", PORTABLE), tmp_path / "flink.yaml")
    spec = yaml.safe_load(path.read_text())
    for component in BEAM_COMPONENTS:
        args = _beam_args(spec, component)
        assert args[:4] == [
            "--runner=PortableRunner",
            "--job_endpoint=flink-jobserver.flink:8099",
            "--environment_type=EXTERNAL",
            "--environment_config=localhost:50000",
        ], component
        options = PipelineOptions(args)
        portable = options.view_as(PortableOptions)
        assert options.view_as(StandardOptions).runner == "PortableRunner"
        assert (portable.job_endpoint, portable.environment_type, portable.environment_config) == (
            "flink-jobserver.flink:8099",
            "EXTERNAL",
            "localhost:50000",
        )


def test_a_docker_harness_runs_the_pipeline_image():
    cfg = load_config("kubeflow", {**PORTABLE, "beam.environment_type": "DOCKER", "beam.environment_config": ""})
    portable = PipelineOptions(cfg.beam_pipeline_args()).view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("DOCKER", IMAGE)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"beam.job_endpoint": ""},
            "beam.job_endpoint='' is invalid: PortableRunner needs the Flink or Spark job server",
        ),
        ({"beam.environment_config": ""}, "beam.environment_config='' is invalid: EXTERNAL needs it"),
        ({"beam.environment_type": "LOOPBACK"}, "beam.environment_type='LOOPBACK' is invalid: must be one of DOCKER"),
    ],
)
def test_bad_portable_beam_configs_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config("kubeflow", {**PORTABLE, **overrides})


@pytest.mark.parametrize(
    ("overrides", "out", "message"),
    [
        ({"output_dir": "/tmp/local-root"}, "job.yaml", "must be a gs:// or s3:// path"),
        ({"output_dir": "minio://mlpipeline/taxi"}, "job.yaml", "must be a gs:// or s3:// path"),
        ({"kubeflow.image_uri": ""}, "job.yaml", "kubeflow.image_uri is missing"),
        ({"kubeflow.image_uri": "registry.example.com/tfx/taxi:latest"}, "job.yaml", "moving tag :latest"),
        ({}, "job.json", "Kubeflow Pipelines takes the spec as YAML; give a .yaml file"),
    ],
)
def test_bad_kubeflow_compiles_fail_before_writing(tmp_path, overrides, out, message):
    with pytest.raises(ValueError, match=message):
        compile_kubeflow(load_config("kubeflow", overrides), tmp_path / out)
    assert not (tmp_path / out).exists()


def _submit(template, *args):
    """`tfxp submit --target kubeflow --template TEMPLATE ARGS...`"""
    return CliRunner().invoke(app, ["submit", "--target", "kubeflow", "--template", str(template), *args])


def test_submit_uploads_the_spec_and_starts_a_run(compiled, tmp_path, no_kfp_env):
    _, path, _ = compiled
    token = tmp_path / "token"
    token.write_text("sa-token-123\n")
    with FakeKfp() as fake:
        result = _submit(
            path,
            "--host",
            fake.url,
            "--experiment",
            "taxi-nightly",
            "--namespace",
            "team-a",
            "--token-file",
            str(token),
            "--parameter",
            "data_root=s3://mlpipeline/other",
            "--parameter",
            'train_args={"num_steps": 50}',
        )
    assert result.exit_code == 0, result.output
    assert (
        f"Submitted run r-1 of taxi-pipeline (version v-1) to experiment 'taxi-nightly' at {fake.url}" in result.output
    )
    assert f"Run: {fake.url}/#/runs/details/r-1" in result.output
    assert {r["headers"].get("authorization") for r in fake.requests} == {"Bearer sa-token-123"}
    (upload,) = fake.sent("POST", "/pipelines/upload")
    assert upload["query"] == {"name": ["taxi-pipeline"], "namespace": ["team-a"]}
    assert upload["form"]["uploadfile"] == path.read_text()
    (experiment,) = fake.sent("POST", "/experiments")
    assert experiment["body"] == {"display_name": "taxi-nightly", "namespace": "team-a"}
    (run,) = fake.sent("POST", "/runs")
    body = run["body"]
    assert body["experiment_id"] == "e-1"
    assert body["display_name"].startswith("taxi-pipeline ")
    assert body["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-1"}
    assert body["runtime_config"] == {
        "pipeline_root": "s3://mlpipeline/taxi-pipeline/tfx_root",
        "parameters": {"data_root": "s3://mlpipeline/other", "train_args": '{"num_steps": 50}'},
    }


def test_submit_with_a_session_cookie_adds_a_version_to_the_existing_pipeline(compiled, no_kfp_env, monkeypatch):
    _, path, _ = compiled
    monkeypatch.setenv("KF_PIPELINES_COOKIE", "authservice_session=abc123")
    with FakeKfp(existing_pipeline="taxi-pipeline") as fake:
        result = _submit(path, "--host", fake.url)
    assert result.exit_code == 0, result.output
    assert fake.sent("GET", "/healthz")  # no namespace given: kfp asks whether the cluster is multi-user
    assert {r["headers"].get("cookie") for r in fake.requests} == {"authservice_session=abc123"}
    assert not [r for r in fake.requests if "authorization" in r["headers"]]
    assert not fake.sent("POST", "/pipelines/upload")
    (version,) = fake.sent("POST", "/pipelines/upload_version")
    assert version["query"]["pipelineid"] == ["p-0"] and version["form"]["uploadfile"] == path.read_text()
    assert fake.sent("POST", "/experiments")[0]["body"]["display_name"] == "taxi-pipeline"  # kubeflow.experiment
    (run,) = fake.sent("POST", "/runs")
    assert run["body"]["pipeline_version_reference"] == {"pipeline_id": "p-0", "pipeline_version_id": "v-2"}
    assert run["body"]["runtime_config"]["parameters"] == {}  # the spec's defaults apply


def test_dry_run_prints_the_request_and_sends_nothing(compiled, tmp_path, no_kfp_env):
    _, path, _ = compiled
    token = tmp_path / "token"
    token.write_text("secret-token")
    result = _submit(
        path,
        "--host",
        "http://127.0.0.1:9",
        "--namespace",
        "team-a",
        "--token-file",
        str(token),
        "--parameter",
        "data_root=gs://b/d",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "secret-token" not in result.output
    printed = json.loads(result.output)
    assert printed["auth"] == f"Bearer token from {token}"
    assert printed["upload"]["pipeline"] == "taxi-pipeline" and printed["upload"]["namespace"] == "team-a"
    assert "Trainer" in printed["upload"]["tasks"]
    assert printed["experiment"] == {"display_name": "taxi-pipeline", "namespace": "team-a"}
    assert printed["run"]["runtime_config"] == {
        "pipeline_root": "s3://mlpipeline/taxi-pipeline/tfx_root",
        "parameters": {"data_root": "gs://b/d"},
    }


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--host is missing: give the Kubeflow Pipelines API URL"),
        (["--host", "localhost:8080"], "must be an http:// or https:// URL"),
        (
            ["--host", "http://127.0.0.1:9", "--parameter", "steps=3"],
            "unknown runtime parameter 'steps'; the pipeline declares: data_root, train_args",
        ),
        (
            ["--host", "http://127.0.0.1:9", "--token-file", "/nonexistent/token"],
            "token file /nonexistent/token does not exist",
        ),
        (["--host", "CLOSED"], "Failed to establish a new connection: [Errno 111] Connection refused): check --host"),
    ],
)
def test_bad_submissions_fail_in_one_line(compiled, no_kfp_env, args, message):
    _, path, _ = compiled
    args = [f"http://127.0.0.1:{_closed_port()}" if a == "CLOSED" else a for a in args]
    result = _submit(path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output and " object at 0x" not in result.output


@pytest.mark.parametrize("namespace", [["--namespace", "team-a"], []], ids=["namespace", "health-check"])
def test_a_refused_token_says_to_check_it(compiled, tmp_path, no_kfp_env, namespace):
    _, path, _ = compiled
    token = tmp_path / "token"
    token.write_text("expired")
    with FakeKfp(token="fresh") as fake:
        result = _submit(
            path,
            "--host",
            fake.url,
            "--token-file",
            str(token),
            *namespace,
        )
    # Without a namespace kfp's health check asks first: refused once, not retried.
    assert [r["path"].rsplit("/", 1)[-1] for r in fake.requests] == (["pipelines"] if namespace else ["healthz"])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Kubeflow Pipelines refused the submission (HTTP 401: " in result.output
    assert "Unauthenticated: invalid bearer token" in result.output
    assert "check the token (--token-file) or session cookie (--cookie), and the namespace" in result.output


def test_a_missing_spec_says_to_compile_it(tmp_path, no_kfp_env):
    result = CliRunner().invoke(
        app, ["submit", "--target", "kubeflow", "--template", str(tmp_path / "x.yaml"), "--host", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2
    assert "x.yaml does not exist: run `tfxp compile --target kubeflow --out x.yaml` first" in result.output


@pytest.mark.parametrize("command", ["compile", "submit"])
def test_an_unknown_target_names_the_known_ones(command):
    result = CliRunner().invoke(app, [command, "--target", "argo"])
    assert result.exit_code == 2
    assert "--target 'argo' is not supported: use --target vertex or --target kubeflow" in result.output
