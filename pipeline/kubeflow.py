"""Compile the pipeline for Kubeflow Pipelines 2.x, and submit it there with ``kfp.Client``.

``compile_spec`` is the one compile path of both targets: KubeflowV2DagRunner on
``create_pipeline(cfg)``, written as a Vertex AI PipelineJob JSON or, for a
``.yaml`` file, the PipelineSpec YAML that a KFP 2.x backend takes.
``build_request`` checks a submission against that YAML; ``submit`` uploads it
(a new pipeline, or a new version of an existing one) and starts a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import PipelineConfig
from pipeline.vertex import SubmitError, runtime_parameters, scoped_runner_class, typed_parameters

YAML_SUFFIXES = (".yaml", ".yml")


def compile_spec(cfg: PipelineConfig, out: Path, image: str) -> Path:
    """Write the pipeline's KubeflowV2 spec to ``out``: PipelineJob JSON, or PipelineSpec YAML for .yaml."""
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import create_pipeline, runtime_parameter_defaults

    as_yaml = out.suffix in YAML_SUFFIXES
    runner = scoped_runner_class()(
        # TFX writes YAML only with spec schema 2.1 (2.0 fails on the runtime parameters).
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=as_yaml
        ),
        output_dir=str(out.parent),
        output_filename=out.name,
    )
    job = runner.run(create_pipeline(cfg), parameter_values=runtime_parameter_defaults(cfg), write_out=False)
    if job is None:  # the TFX CLI only read the pipeline's name
        return out
    if as_yaml:
        # The YAML holds the PipelineSpec alone: TFX leaves out the runtimeConfig,
        # and with it the pipeline root and the parameters' defaults. Both go
        # where KFP reads them in a spec.
        spec, runtime = job["pipelineSpec"], job["runtimeConfig"]
        spec["defaultPipelineRoot"] = runtime["gcsOutputDirectory"]
        declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        for name, value in runtime.get("parameterValues", {}).items():
            declared[name].update(defaultValue=value, isOptional=True)
    # Where the runner would write it: the TFX CLI (`tfx pipeline compile`) redirects it.
    out = Path(runner._output_dir) / runner._output_filename
    out.parent.mkdir(parents=True, exist_ok=True)
    kubeflow_v2_dag_runner._write_pipeline_spec_to_file(  # TFX's own JSON/YAML writer, with its header
        job, f"Compiled from the TFX pipeline {cfg.name}.", str(out)
    )
    return out


def compile_kubeflow(cfg: PipelineConfig, out: Path) -> Path:
    """Write the PipelineSpec YAML of the pipeline for Kubeflow Pipelines 2.x to ``out``."""
    if out.suffix not in YAML_SUFFIXES:
        raise ValueError(f"--out {out.name}: Kubeflow Pipelines takes the spec as YAML; give a .yaml file")
    cfg.kubeflow.check(cfg.output_dir)
    return compile_spec(cfg, out, cfg.kubeflow.image_uri)


@dataclasses.dataclass(frozen=True)
class KubeflowRequest:
    """Everything sent to Kubeflow Pipelines for one run."""

    spec_path: str
    host: str
    pipeline_name: str
    version_name: str
    run_name: str
    experiment: str
    namespace: str | None
    pipeline_root: str
    parameters: dict[str, Any]
    token_file: str | None
    cookie: str | None = dataclasses.field(default=None, repr=False)

    @property
    def auth(self) -> str:
        if self.token_file:
            return f"Bearer token from {self.token_file}"
        return "session cookie" if self.cookie else "none"


def load_spec(path: Path) -> dict[str, Any]:
    """A compiled PipelineSpec YAML; SubmitError if it is missing or something else."""
    if not path.is_file():
        raise SubmitError(f"{path} does not exist: run `tfxp compile --target kubeflow --out {path.name}` first")
    try:
        spec = yaml.safe_load(path.read_text())
        spec["root"]["dag"]["tasks"]
        spec["pipelineInfo"]["name"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise SubmitError(f"{path} is not a compiled KFP pipeline spec ({exc}): recompile it") from None
    return spec


def build_request(
    spec_path: Path,
    host: str,
    *,
    experiment: str,
    namespace: str = "",
    parameters: Mapping[str, str] | None = None,
    token_file: str | None = None,
    cookie: str | None = None,
) -> KubeflowRequest:
    """Check the submission against the compiled spec; raise SubmitError naming the problem."""
    if not host:
        raise SubmitError(
            "--host is missing: give the Kubeflow Pipelines API URL (e.g. http://localhost:8080 after "
            "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`), or set kubeflow.host in the profile"
        )
    if not host.startswith(("http://", "https://")):
        raise SubmitError(f"--host {host!r} must be an http:// or https:// URL, e.g. http://localhost:8080")
    if token_file and not Path(token_file).is_file():
        raise SubmitError(
            f"token file {token_file} does not exist: give a service-account token file with --token-file "
            "(or KF_PIPELINES_SA_TOKEN_PATH), or a session cookie with --cookie"
        )
    spec = load_spec(spec_path)
    values = typed_parameters(runtime_parameters(spec), parameters, "kubeflow.runtime_parameters: true")
    name = spec["pipelineInfo"]["name"]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H-%M-%S")
    return KubeflowRequest(
        spec_path=str(spec_path),
        host=host.rstrip("/"),
        pipeline_name=name,
        version_name=f"{name} {stamp}",
        run_name=f"{name} {stamp}",
        experiment=experiment or "Default",
        namespace=namespace or None,
        pipeline_root=spec.get("defaultPipelineRoot", ""),
        parameters=values,
        token_file=token_file or None,
        cookie=cookie or None,
    )


def dry_run(request: KubeflowRequest) -> dict[str, Any]:
    """What ``submit`` would send, built offline: the upload, the experiment and the run."""
    spec = load_spec(Path(request.spec_path))
    return {
        "host": request.host,
        "auth": request.auth,
        "upload": {
            "pipeline": request.pipeline_name,
            "version": request.version_name,
            "namespace": request.namespace,
            "file": request.spec_path,
            "tasks": sorted(spec["root"]["dag"]["tasks"]),
        },
        "experiment": {"display_name": request.experiment, "namespace": request.namespace},
        "run": {
            "display_name": request.run_name,
            "runtime_config": {"pipeline_root": request.pipeline_root, "parameters": request.parameters},
        },
    }


@dataclasses.dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    pipeline_id: str
    version_id: str
    experiment_id: str
    url: str


def _client(request: KubeflowRequest) -> Any:
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    class Client(kfp.Client):
        def get_kfp_healthz(self, sleep_duration: int = 0) -> Any:
            # Once: kfp retries a refused health check 5 times 5 s apart, logging a traceback each time.
            return self._healthz_api.get_healthz()

    credentials = ServiceAccountTokenVolumeCredentials(request.token_file) if request.token_file else None
    return Client(
        host=request.host,
        namespace=request.namespace or "kubeflow",  # kfp's default: read the namespace from its context
        credentials=credentials,
        cookies=request.cookie,
    )


def _upload(client: Any, request: KubeflowRequest) -> tuple[str, str]:
    """A new pipeline, or a new version of the one of the same name: (pipeline id, version id)."""
    pipeline_id = client.get_pipeline_id(request.pipeline_name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(
            request.spec_path, pipeline_name=request.pipeline_name, namespace=request.namespace
        ).pipeline_id
        versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
        return pipeline_id, versions.pipeline_versions[0].pipeline_version_id
    version = client.upload_pipeline_version(request.spec_path, request.version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def submit(request: KubeflowRequest) -> SubmittedRun:
    """Upload the spec and start a run; SubmitError says what went wrong and what to do."""
    import kfp_server_api
    import urllib3

    try:
        # kfp prints links as it goes; the CLI prints its own summary.
        with contextlib.redirect_stdout(io.StringIO()):
            client = _client(request)
            pipeline_id, version_id = _upload(client, request)
            experiment = client.create_experiment(request.experiment, namespace=request.namespace)
            run = client.run_pipeline(
                experiment.experiment_id,
                request.run_name,
                params=request.parameters,
                pipeline_id=pipeline_id,
                version_id=version_id,
                pipeline_root=request.pipeline_root or None,
            )
    except urllib3.exceptions.HTTPError as exc:
        reason = re.sub(r"<[^>]*>: ", "", str(getattr(exc, "reason", None) or exc))  # drop urllib3's object reprs
        raise SubmitError(
            f"cannot reach Kubeflow Pipelines at {request.host} ({reason}): check --host, "
            "and that the API is reachable (e.g. kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80)"
        ) from None
    except kfp_server_api.ApiException as exc:
        hint = (
            "check the token (--token-file) or session cookie (--cookie), and the namespace"
            if exc.status in (401, 403)
            else "check the host, the namespace and the compiled spec"
        )
        detail = " ".join(str(exc.body or exc.reason).split())[:300]
        raise SubmitError(f"Kubeflow Pipelines refused the submission (HTTP {exc.status}: {detail}): {hint}") from None
    return SubmittedRun(
        run_id=run.run_id,
        pipeline_id=pipeline_id,
        version_id=version_id,
        experiment_id=experiment.experiment_id,
        url=f"{request.host}/#/runs/details/{run.run_id}",
    )
