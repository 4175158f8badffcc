"""Compile the pipeline for Vertex AI Pipelines and submit it with aiplatform.

``compile_vertex`` writes the PipelineJob JSON through the compile path shared
with Kubeflow Pipelines (``pipeline.kubeflow.compile_spec``); ``submit`` sends that file with
``google.cloud.aiplatform.PipelineJob(template_path=...).submit()``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig


class SubmitError(RuntimeError):
    """The submission cannot go ahead; the message says what to do."""


def compile_vertex(cfg: PipelineConfig, out: Path) -> Path:
    """Write the KubeflowV2 PipelineJob JSON of the pipeline to ``out``."""
    from pipeline.kubeflow import compile_spec

    check_vertex(cfg)
    return compile_spec(cfg, out, cfg.vertex.image_uri)


def check_vertex(cfg: PipelineConfig) -> None:
    """Raise ValueError naming what stops this config from compiling for Vertex AI."""
    cfg.vertex.check(cfg.output_dir)
    check_serving_image(cfg.vertex.endpoint_name, cfg.vertex.serving_image_uri, version("tensorflow"))


def check_serving_image(endpoint_name: str, image_uri: str, tf_version: str) -> None:
    """Refuse a Vertex AI prebuilt TensorFlow image of another release than the model's.

    A SavedModel can use ops an older TensorFlow lacks, and prebuilt images are
    only published as moving ``:latest`` tags per TF minor release.
    """
    if not endpoint_name:
        return  # the Pusher writes to the filesystem; no Vertex serving image
    from google.cloud.aiplatform.constants import prediction

    trained = ".".join(tf_version.split(".")[:2])
    prebuilt = {
        m["version"].replace("-", "."): uri
        for uri in prediction.TF_CONTAINER_URIS
        if (m := prediction.CONTAINER_URI_PATTERN.fullmatch(uri)) and m["accelerator"] == "cpu"
    }
    advice = (
        f"use {prebuilt[trained]}" if trained in prebuilt
        else f"Vertex AI has no prebuilt TensorFlow {trained} prediction image (aiplatform lists up to "
        f"{max(prebuilt, key=lambda v: tuple(map(int, v.split('.'))))}): build serving/Dockerfile.vertex "
        f"(the pipeline image, TensorFlow {trained}, running `tfxp serve --vertex`), push it and set its URI "
        "(README, Vertex AI Endpoint)"
    )
    if not image_uri:
        raise ValueError(
            f"vertex.serving_image_uri is missing (vertex.endpoint_name={endpoint_name!r}): {advice}"
        )
    match = prediction.CONTAINER_URI_PATTERN.fullmatch(image_uri)
    if match and match["framework"] in (prediction.TF, prediction.TF2):
        serves = match["version"].replace("-", ".")
        if serves != trained:
            raise ValueError(
                f"vertex.serving_image_uri={image_uri!r} serves TensorFlow {serves}, "
                f"but the model is trained with TensorFlow {tf_version}: {advice}"
            )


def scope_resolver_queries(job: dict[str, Any], pipeline_root: str) -> dict[str, Any]:
    """Limit every resolver's Vertex ML Metadata query to this pipeline's artifacts.

    TFX compiles a resolver into a query on the artifact type and state only,
    which matches artifacts of every pipeline in the project and region: the
    latest blessed model (or statistics) of another pipeline would do. Vertex AI
    writes each run's artifacts under ``<pipeline_root>/<project number>/<job id>/``,
    and the pipeline root is this pipeline's own (``output_dir``), so a URI
    prefix selects this pipeline's artifacts only.
    """
    scope = f"uri={json.dumps(pipeline_root.rstrip('/') + '/*')}"
    for executor in job["pipelineSpec"]["deploymentSpec"]["executors"].values():
        for query in executor.get("resolver", {}).get("outputArtifactQueries", {}).values():
            query["filter"] = f"{query['filter']} AND {scope}"
    return job


def scoped_runner_class() -> type:
    """KubeflowV2DagRunner whose job has its resolver queries scoped; compile_spec writes it (both targets)."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    class ScopedDagRunner(kubeflow_v2_dag_runner.KubeflowV2DagRunner):
        def run(self, pipeline: Any, parameter_values: Any = None, write_out: bool = False) -> Any:
            job = super().run(pipeline, parameter_values=parameter_values, write_out=False)
            if job is not None:  # None: the TFX CLI only read the pipeline's name
                scope_resolver_queries(job, pipeline.pipeline_info.pipeline_root)
            return job

    return ScopedDagRunner


def runtime_parameters(template: Mapping[str, Any]) -> dict[str, str]:
    """Declared runtime parameters of a compiled PipelineJob (or its PipelineSpec): name -> type."""
    params = template.get("pipelineSpec", template)["root"].get("inputDefinitions", {}).get("parameters", {})
    return {name: spec.get("parameterType") or spec.get("type", "") for name, spec in params.items()}


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; a malformed item names itself."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SubmitError(f"{what} {item!r} must look like key=value")
        out[key] = value
    return out


def _typed(name: str, value: str, kind: str) -> Any:
    try:
        if kind in ("NUMBER_INTEGER", "INT"):
            return int(value)
        if kind in ("NUMBER_DOUBLE", "DOUBLE"):
            return float(value)
    except ValueError:
        raise SubmitError(f"runtime parameter {name}={value!r} must be a {kind.lower()}") from None
    return value


def typed_parameters(
    declared: Mapping[str, str], parameters: Mapping[str, str] | None, compile_with: str
) -> dict[str, Any]:
    """``--parameter`` values checked against the compiled pipeline's declared parameters, and typed."""
    values = {}
    for name, value in (parameters or {}).items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or f"none (compile with {compile_with})"
            raise SubmitError(f"unknown runtime parameter {name!r}; the pipeline declares: {known}")
        values[name] = _typed(name, value, declared[name])
    return values


@dataclasses.dataclass(frozen=True)
class SubmitRequest:
    """Everything sent to Vertex AI for one pipeline run."""

    template_path: str
    project: str
    region: str
    display_name: str
    pipeline_root: str
    parameter_values: dict[str, Any]
    labels: dict[str, str]
    enable_caching: bool
    service_account: str | None
    network: str | None


def build_request(
    template_path: Path,
    project: str,
    region: str,
    *,
    parameters: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    enable_caching: bool = True,
    service_account: str | None = None,
    network: str | None = None,
) -> SubmitRequest:
    """Check the submission against the compiled template; raise SubmitError naming the problem."""
    if not project:
        raise SubmitError("--project is missing: give the Google Cloud project to run in")
    if not region:
        raise SubmitError("--region is missing: give the Vertex AI region, e.g. us-central1")
    if not template_path.is_file():
        raise SubmitError(
            f"{template_path} does not exist: run `tfxp compile --target vertex --out {template_path}` first"
        )
    try:
        template = json.loads(template_path.read_text())
        declared = runtime_parameters(template)
        pipeline_root = template["runtimeConfig"]["gcsOutputDirectory"]
        display_name = template.get("displayName") or template["pipelineSpec"]["pipelineInfo"]["name"]
    except (ValueError, KeyError) as exc:
        raise SubmitError(f"{template_path} is not a compiled PipelineJob JSON ({exc}): recompile it") from None
    values = typed_parameters(declared, parameters, "vertex.runtime_parameters: true")
    return SubmitRequest(
        template_path=str(template_path),
        project=project,
        region=region,
        display_name=display_name,
        pipeline_root=pipeline_root,
        parameter_values=values,
        labels=dict(labels or {}),
        enable_caching=enable_caching,
        service_account=service_account or None,
        network=network or None,
    )


def _pipeline_job(request: SubmitRequest, credentials: Any) -> Any:
    from google.cloud import aiplatform

    return aiplatform.PipelineJob(
        display_name=request.display_name,
        template_path=request.template_path,
        pipeline_root=request.pipeline_root,
        parameter_values=request.parameter_values,
        enable_caching=request.enable_caching,
        labels=request.labels or None,
        project=request.project,
        location=request.region,
        credentials=credentials,
    )


def dry_run(request: SubmitRequest) -> dict[str, Any]:
    """The REST call ``submit`` would make, built offline with anonymous credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.protobuf import json_format

    job = _pipeline_job(request, AnonymousCredentials())
    body = json_format.MessageToDict(job._gca_resource._pb)  # the PipelineJob resource aiplatform sends
    if request.service_account:
        body["serviceAccount"] = request.service_account
    if request.network:
        body["network"] = request.network
    return {
        "method": "POST",
        "url": f"https://{request.region}-aiplatform.googleapis.com/v1/projects/{request.project}"
        f"/locations/{request.region}/pipelineJobs",
        "body": body,
    }


def submit(request: SubmitRequest, credentials: Any = None, api_endpoint: str | None = None) -> str:
    """Submit the run; returns the PipelineJob resource name.

    ``api_endpoint`` overrides the regional Vertex AI endpoint (a private
    endpoint, or a local fake in tests); an ``http://`` one uses REST transport.
    """
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import aiplatform

    if credentials is None:
        try:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        except DefaultCredentialsError:
            raise SubmitError(
                "no Google Cloud credentials found: run `gcloud auth application-default login`, "
                "or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
            ) from None
    if api_endpoint:
        aiplatform.init(api_endpoint=api_endpoint, api_transport="rest" if api_endpoint.startswith("http://") else None)
    job = _pipeline_job(request, credentials)
    try:
        job.submit(service_account=request.service_account, network=request.network)
    except Exception as exc:  # noqa: BLE001 - any API error is reported, without a stack trace
        raise SubmitError(f"Vertex AI refused the submission: {exc}") from exc
    return job.resource_name
