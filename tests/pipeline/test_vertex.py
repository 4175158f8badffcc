"""Vertex AI: the compiled PipelineJob JSON, aiplatform, and `tfxp submit` against a local fake."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.pipeline import create_pipeline
from pipeline.vertex import compile_vertex
from tests.conftest import REPO_ROOT
from tests.pipeline.fake_vertex import FakeCloud, user_credentials

BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
RESOLVER = "LatestBlessedModelResolver"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    cfg = load_config("vertex")
    path = compile_vertex(cfg, tmp_path_factory.mktemp("vertex") / "taxi-pipeline.json")
    return cfg, path, json.loads(path.read_text())


@pytest.fixture
def offline_google(monkeypatch, tmp_path):
    """No real credentials and no metadata server: google-auth only sees loopback."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")


def test_compiled_json_parses_into_the_kfp_protos(compiled):
    _, _, job = compiled
    parsed = json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert parsed.display_name == "taxi-pipeline"
    assert spec.pipeline_info.name == "taxi-pipeline"
    assert parsed.runtime_config.gcs_output_directory == "gs://my-bucket/taxi-pipeline/tfx_root"


def _task_node(task: str) -> str:
    return RESOLVER if task.startswith(RESOLVER) else task


def test_the_dag_matches_the_local_pipeline(compiled):
    cfg, _, job = compiled
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    vertex_edges = {
        (_task_node(up), _task_node(name)) for name, t in tasks.items() for up in t.get("dependentTasks", [])
    }
    components = create_pipeline(cfg).components
    local_edges = {(u.id, c.id) for c in components for u in c.upstream_nodes}
    assert {_task_node(t) for t in tasks} == {c.id for c in components}
    assert vertex_edges == local_edges
    assert ("AnomaliesGate", "Transform") in vertex_edges


def test_executors_run_the_pipeline_image_with_dataflow(compiled):
    cfg, _, job = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {name.removesuffix("_executor"): e["container"] for name, e in executors.items() if "container" in e}
    assert set(BEAM_COMPONENTS) <= set(containers)
    for name, container in containers.items():
        assert container["image"] == cfg.vertex.image_uri, name
    for name in BEAM_COMPONENTS:
        args = containers[name]["args"]
        assert "--runner=DataflowRunner" in args
        assert f"--sdk_container_image={cfg.vertex.image_uri}" in args
        assert "--project=my-gcp-project" in args and "--region=us-central1" in args
        assert "--temp_location=gs://my-bucket/taxi-pipeline/beam_tmp" in args
        assert "--experiments=use_runner_v2" in args


def _resolver_filters(job):
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    return {
        name.removesuffix("_executor"): {
            key: query["filter"] for key, query in e["resolver"]["outputArtifactQueries"].items()
        }
        for name, e in executors.items()
        if "resolver" in e
    }


def test_resolvers_query_only_this_pipelines_artifacts(compiled):
    _, _, job = compiled
    scope = 'uri="gs://my-bucket/taxi-pipeline/tfx_root/*"'
    assert _resolver_filters(job) == {
        f"{RESOLVER}-model-blessing-resolver": {
            "model_blessing": 'schema_title="tfx.ModelBlessing" AND state=LIVE AND '
            f"metadata.blessed.number_value=1 AND {scope}"
        },
        f"{RESOLVER}-model-resolver": {
            "model": 'schema_title="tfx.Model" AND state=LIVE AND '
            "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
            f" AND {scope}"
        },
        "PreviousSpanStatistics": {
            "statistics": f'schema_title="tfx.ExampleStatistics" AND state=LIVE AND {scope}'
        },
    }


def _schema_task(job):
    return job["pipelineSpec"]["root"]["dag"]["tasks"]["ImportSchemaGen"]["inputs"]["parameters"]


def test_the_image_schema_is_fingerprinted_by_its_content(compiled):
    """The profile's schema path exists only in the image; the checkout's copy (built into it) is hashed."""
    _, _, job = compiled
    params = _schema_task(job)
    schema_file = params["schema_file"]["runtimeValue"]["constantValue"]["stringValue"]
    assert schema_file == "/pipeline/schema/schema.pbtxt"
    content = (REPO_ROOT / "schema" / "schema.pbtxt").read_bytes()
    assert params["content_fingerprint"]["runtimeValue"]["constantValue"]["stringValue"] == (
        hashlib.sha256(content).hexdigest()
    )


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


def test_a_schema_edit_changes_only_the_schema_steps_cache_key(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    cfg = load_config("vertex", {"data.schema_file": str(schema)})
    jobs = []
    for text in ('feature { name: "fare" type: FLOAT }\n', 'feature { name: "fare" type: FLOAT }\n',
                 'feature { name: "fare" type: INT }\n'):
        schema.write_text(text)
        jobs.append(dict(_leaves(json.loads(compile_vertex(cfg, tmp_path / "job.json").read_text()))))
    assert jobs[0] == jobs[1]
    changed = {path for path in jobs[0].keys() | jobs[2].keys() if jobs[0].get(path) != jobs[2].get(path)}
    fingerprint = ("pipelineSpec", "root", "dag", "tasks", "ImportSchemaGen", "inputs", "parameters",
                   "content_fingerprint", "runtimeValue", "constantValue", "stringValue")
    assert changed == {fingerprint}
    assert jobs[2][fingerprint] == hashlib.sha256(b'feature { name: "fare" type: INT }\n').hexdigest()


def test_tuning_on_vertex_runs_parallel_trials_as_custom_jobs(tmp_path):
    cfg = load_config(
        "vertex",
        {
            "tuning.enabled": True,
            "tuning.parallel_trials": 3,
            "vertex.training_machine_type": "n1-standard-8",
        },
    )
    job = json.loads(compile_vertex(cfg, tmp_path / "job.json").read_text())
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks["Trainer"]["dependentTasks"]) == {
        "CsvExampleGen", "ImportSchemaGen", "Transform", "Tuner"
    }
    assert tasks["Trainer"]["inputs"]["artifacts"]["hyperparameters"] == {
        "taskOutputArtifact": {"outputArtifactKey": "best_hyperparameters", "producerTask": "Tuner"}
    }
    executor = job["pipelineSpec"]["deploymentSpec"]["executors"]["Tuner_executor"]["container"]
    assert executor["image"] == cfg.vertex.image_uri
    assert executor["args"][:2] == [
        "--executor_class_path",
        "tfx.extensions.google_cloud_ai_platform.tuner.executor.Executor",
    ]
    params = tasks["Tuner"]["inputs"]["parameters"]
    tune_args = json.loads(params["tune_args"]["runtimeValue"]["constantValue"]["stringValue"])
    assert tune_args == {"num_parallel_trials": 3}
    custom = json.loads(params["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "us-central1"
    tuning_args = custom["ai_platform_tuning_args"]
    assert tuning_args["project"] == "my-gcp-project"
    # The chief runs trials as well: with 3 parallel trials, 2 workers beside it, all on the pipeline image.
    pools = tuning_args["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    for pool in pools:
        assert pool["machine_spec"] == {"machine_type": "n1-standard-8"}
        assert pool["container_spec"] == {"image_uri": cfg.vertex.image_uri}
    assert custom["tuning"] == {"max_trials": cfg.tuning.max_trials, "executions_per_trial": 1}


def test_runtime_parameters_are_declared_with_defaults(compiled):
    _, _, job = compiled
    declared = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == {"data_root", "train_args"}
    defaults = job["runtimeConfig"]["parameters"]
    assert defaults["data_root"] == {"stringValue": "gs://my-bucket/taxi-data"}
    assert json.loads(defaults["train_args"]["stringValue"]) == {"num_steps": 1000}
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks["CsvExampleGen"]["inputs"]["parameters"]["input_base"] == {"componentInputParameter": "data_root"}
    assert tasks["Trainer"]["inputs"]["parameters"]["train_args"] == {"componentInputParameter": "train_args"}


def test_aiplatform_builds_a_pipeline_job_from_the_file(compiled):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    _, path, _ = compiled
    job = aiplatform.PipelineJob(
        display_name="taxi-pipeline",
        template_path=str(path),
        parameter_values={"data_root": "gs://other/data"},
        project="p1",
        location="us-central1",
        credentials=AnonymousCredentials(),
    )
    resource = job._gca_resource
    assert resource.display_name == "taxi-pipeline"
    # TFX declares parameters with the v1 `type` field, so they travel as `parameters`.
    assert resource.runtime_config.parameters["data_root"].string_value == "gs://other/data"


def test_submit_sends_the_request_vertex_expects(compiled, offline_google, tmp_path, monkeypatch):
    _, path, _ = compiled
    with FakeCloud() as fake:
        key = tmp_path / "key.json"
        key.write_text(json.dumps(user_credentials(f"{fake.url}/token")))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
        result = CliRunner().invoke(
            app,
            [
                "submit", "--template", str(path), "--project", "p1", "--region", "us-central1",
                "--service-account", "runner@p1.iam.gserviceaccount.com", "--network", "projects/1/global/networks/vpc",
                "--no-enable-caching", "--label", "team=ml", "--label", "env=test",
                "--parameter", "data_root=gs://other/data", "--parameter", 'train_args={"num_steps": 50}',
                "--api-endpoint", fake.url,
            ],
        )
        assert result.exit_code == 0, result.output
        sent = fake.pipeline_job_requests()
    assert len(sent) == 1
    request = sent[0]
    assert request["path"] == "/v1/projects/p1/locations/us-central1/pipelineJobs"
    assert request["query"]["pipelineJobId"][0].startswith("taxi-pipeline-")
    assert request["headers"]["authorization"] == "Bearer fake-token"
    assert [r["path"] for r in fake.requests][0] == "/token"  # credentials refreshed at the fake
    body = json.loads(request["raw"])
    assert body["displayName"] == "taxi-pipeline"
    assert body["serviceAccount"] == "runner@p1.iam.gserviceaccount.com"
    assert body["network"] == "projects/1/global/networks/vpc"
    assert body["labels"]["team"] == "ml" and body["labels"]["env"] == "test"
    params = body["runtimeConfig"]["parameters"]
    assert params["data_root"] == {"stringValue": "gs://other/data"}
    assert json.loads(params["train_args"]["stringValue"]) == {"num_steps": 50}
    tasks = body["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {t.get("cachingOptions", {}).get("enableCache", False) for t in tasks.values()} == {False}
    assert set(tasks) >= {"CsvExampleGen", "Trainer", "Pusher"}
    job_id = request["query"]["pipelineJobId"][0]
    assert f"Submitted projects/p1/locations/us-central1/pipelineJobs/{job_id}" in result.output


def test_dry_run_prints_the_request_without_credentials(compiled, offline_google):
    _, path, _ = compiled
    result = CliRunner().invoke(
        app,
        [
            "submit",
            "--template",
            str(path),
            "--project",
            "p1",
            "--region",
            "europe-west4",
            "--parameter",
            "data_root=gs://x/y",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["url"].endswith("/v1/projects/p1/locations/europe-west4/pipelineJobs")
    assert printed["body"]["runtimeConfig"]["parameters"]["data_root"] == {"stringValue": "gs://x/y"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "us-central1"], "--project is missing"),
        (["--project", "p1"], "--region is missing"),
        (
            ["--project", "p1", "--region", "us-central1", "--parameter", "steps=3"],
            "unknown runtime parameter 'steps'; the pipeline declares: data_root, train_args",
        ),
        (["--project", "p1", "--region", "us-central1", "--parameter", "data_root"], "must look like key=value"),
        (
            ["--project", "p1", "--region", "us-central1"],
            "no Google Cloud credentials found: run `gcloud auth application-default login`",
        ),
    ],
)
def test_bad_submissions_fail_clearly_before_sending(compiled, offline_google, args, message):
    _, path, _ = compiled
    result = CliRunner().invoke(app, ["submit", "--template", str(path), *args])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"output_dir": "/tmp/local-root"}, "must be a gs:// path"),
        ({"vertex.image_uri": ""}, "vertex.image_uri is missing"),
        ({"vertex.image_uri": "taxi pipeline"}, "is not an image reference"),
        ({"vertex.image_uri": "us-central1-docker.pkg.dev/p/tfx/taxi-pipeline:latest"}, "moving tag :latest"),
        ({"vertex.project": ""}, "vertex.project is missing"),
        ({"vertex.region": ""}, "vertex.region is missing"),
        (
            {"vertex.endpoint_name": "taxi-endpoint"},
            r"vertex.serving_image_uri is missing .*: .* build serving/Dockerfile\.vertex",
        ),
        (
            {
                "vertex.endpoint_name": "taxi-endpoint",
                "vertex.serving_image_uri": "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest",
            },
            r"serves TensorFlow 2\.15, but the model is trained with TensorFlow 2\.16\.\d+: "
            r"Vertex AI has no prebuilt TensorFlow 2\.16 prediction image \(aiplatform lists up to 2\.15\): "
            r"build serving/Dockerfile\.vertex \(the pipeline image, TensorFlow 2\.16, running `tfxp serve --vertex`\)",
        ),
        (
            {
                "vertex.endpoint_name": "taxi-endpoint",
                "vertex.serving_image_uri": "europe-docker.pkg.dev/vertex-ai/prediction/tf2-gpu.2-17:latest",
            },
            r"serves TensorFlow 2\.17, but the model is trained with TensorFlow 2\.16",
        ),
    ],
)
def test_bad_vertex_configs_fail_before_compiling(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        compile_vertex(load_config("vertex", overrides), tmp_path / "job.json")
    assert not (tmp_path / "job.json").exists()


def test_the_endpoint_pusher_gets_the_configured_serving_image(tmp_path):
    image = "us-central1-docker.pkg.dev/my-gcp-project/tfx/taxi-serving:v1"
    cfg = load_config("vertex", {"vertex.endpoint_name": "taxi-endpoint", "vertex.serving_image_uri": image})
    job = json.loads(compile_vertex(cfg, tmp_path / "job.json").read_text())
    pusher = job["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]
    custom = json.loads(pusher["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
    assert custom["ai_platform_vertex_container_image_uri"] == image
    assert custom["ai_platform_serving_args"]["endpoint_name"] == "taxi-endpoint"


def test_compile_refuses_a_mismatched_serving_image_in_one_line(tmp_path):
    profile = yaml.safe_load((REPO_ROOT / "pipeline" / "profiles" / "vertex.yaml").read_text())
    profile["vertex"].update(
        endpoint_name="taxi-endpoint",
        serving_image_uri="us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest",
    )
    path = tmp_path / "vertex.yaml"
    path.write_text(yaml.safe_dump(profile))
    result = CliRunner().invoke(app, ["compile", "--profile", str(path), "--out", str(tmp_path / "job.json")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: vertex.serving_image_uri=")
    assert not (tmp_path / "job.json").exists()


def test_tfx_cli_create_and_compile_produce_the_same_pipeline(compiled, tmp_path):
    _, _, job = compiled
    venv_bin = os.path.dirname(sys.executable)
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # the CLI keeps its registry under $HOME/tfx
        "PATH": f"{venv_bin}:{os.environ['PATH']}",  # it checks `pip freeze` for kfp
        "TFXP_PROFILE": "vertex",
    }
    for command in ("create", "compile"):
        done = subprocess.run(
            [
                f"{venv_bin}/tfx",
                "pipeline",
                command,
                "--engine",
                "vertex",
                "--pipeline_path",
                str(REPO_ROOT / "runners" / "vertex_runner.py"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    created = json.loads((tmp_path / "tfx" / "vertex" / "taxi-pipeline" / "pipeline.json").read_text())
    compiled_by_cli = json.loads((tmp_path / "taxi-pipeline.json").read_text())
    for other in (created, compiled_by_cli):
        assert other["pipelineSpec"]["root"] == job["pipelineSpec"]["root"]
        assert other["pipelineSpec"]["deploymentSpec"] == job["pipelineSpec"]["deploymentSpec"]
        assert other["runtimeConfig"] == job["runtimeConfig"]


def test_statistics_gen_builds_a_dataflow_job_on_the_pipeline_image(offline_google):
    """The vertex profile's Beam args, through TFX's Beam executor, into a Dataflow job (a dry run)."""
    import apache_beam as beam
    import pyarrow as pa
    import tensorflow_data_validation as tfdv
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.runners.dataflow.internal import apiclient
    from tfx.components.statistics_gen.executor import Executor
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

    cfg = load_config("vertex")
    args = [*cfg.beam_pipeline_args(), "--dry_run=True"]
    executor = Executor(BaseBeamExecutor.Context(beam_pipeline_args=args))
    pipeline = executor._make_beam_pipeline()  # how StatisticsGen builds its pipeline
    batch = pa.RecordBatch.from_arrays([pa.array([[7.25]])], ["fare"])
    _ = pipeline | beam.Create([batch]) | tfdv.GenerateStatistics()
    job = pipeline.run().job
    # The environment Beam sends with the job; the dry run stops before staging, which builds it.
    environment = apiclient.Environment(
        packages=[],
        options=job.options,
        environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
        proto_pipeline_staged_url="",
        proto_pipeline=job.proto_pipeline,
    ).proto
    assert job.google_cloud_options.project == "my-gcp-project"
    assert job.google_cloud_options.region == "us-central1"
    temp = f"storage.googleapis.com/my-bucket/taxi-pipeline/beam_tmp/{job.proto.name}."
    assert environment.tempStoragePrefix.startswith(temp)
    (pool,) = environment.workerPools
    assert [i.containerImage for i in pool.sdkHarnessContainerImages] == [cfg.vertex.image_uri]
    assert pool.machineType == "n1-standard-4" and pool.autoscalingSettings.maxNumWorkers == 10
    docker = {
        beam_runner_api_pb2.DockerPayload.FromString(e.payload).container_image
        for e in job.proto_pipeline.components.environments.values()
    }
    assert docker == {cfg.vertex.image_uri}
    # The image carries the code: TFX adds no package of itself to stage.
    assert pool.packages == [] and not job.options.get_all_options()["extra_packages"]
