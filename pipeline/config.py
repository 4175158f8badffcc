"""The one typed config of the pipeline.

A config is built explicitly from a named profile (``pipeline/profiles/<name>.yaml``)
plus overrides, with :func:`load_config`. Nothing is read at import time.

Relative paths in a profile are resolved against the project root (see
:func:`project_root`); paths given as overrides should already be absolute
(the CLI resolves them against the working directory).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from typing_extensions import Self

from models.features import FeatureSpec, Kind, load_spec
from models.features import from_dict as spec_from_dict
from models.hparams import Count, Frozen, HParams, Integer, Number

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def project_root() -> Path:
    """What a profile's relative paths are relative to.

    ``$TFXP_PROJECT_ROOT`` if set (the pipeline image sets ``/pipeline``, its
    WORKDIR), else this source checkout (the directory holding ``setup.py``),
    else the working directory: an installed (non-editable) package sits in
    site-packages, away from ``schema/`` and ``data/``.
    """
    if os.environ.get("TFXP_PROJECT_ROOT"):
        return Path(os.environ["TFXP_PROJECT_ROOT"]).expanduser().resolve()
    return PROJECT_ROOT if (PROJECT_ROOT / "setup.py").is_file() else Path.cwd()


# Vertex AI refuses other names, so the pipeline uses a name valid everywhere.
_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_RUNNERS = ("DirectRunner", "DataflowRunner", "PortableRunner")
# Beam's PortableRunner SDK harness kinds for a Flink or Spark cluster (LOOPBACK is for tests on one machine).
_ENVIRONMENT_TYPES = ("DOCKER", "EXTERNAL", "PROCESS")
_IMAGE_URI = re.compile(r"[a-z0-9][a-z0-9.-]*(:[0-9]+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})")
_BASELINES = ("blessed_before_candidate", "latest_blessed", "none")
_SPAN_RESOLUTIONS = ("by_span", "latest", "none")
_RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
# Beam's own DirectRunner defaults (apache_beam.options.pipeline_options.DirectOptions).
BEAM_DEFAULT_MODE = "in_memory"
BEAM_DEFAULT_WORKERS = 1
# Cells read as missing besides empty ones (data.missing_values' default).
MISSING_VALUES = ("NA", "NaN", "null")


class FieldError(ValueError):
    """A bad config value, already named: ``config field F=V is invalid: why``."""


def _fail(field: str, value: Any, why: str) -> None:
    raise FieldError(f"config field {field}={value!r} is invalid: {why}")


class DataConfig(Frozen):
    """Where the CSV data is and how it is split."""

    root: str
    schema_file: str = "schema/schema.pbtxt"
    # Three splits by hash: the Trainer fits on train and validates (early
    # stopping, progress) on eval; the Evaluator grades on test alone, data the
    # Trainer never saw.
    train_buckets: Count = 14
    eval_buckets: Count = 3
    test_buckets: Count = 3
    # The column the split hashes on. Empty hashes the whole row, so any edit to
    # a row (a new column, a corrected value) can move it to another split.
    partition_feature: str = ""
    # A BigQuery query to read instead of the CSV files (BigQueryExampleGen);
    # empty reads CSV from ``root``.
    bigquery_query: str = ""
    # Data that arrives in spans: a pattern under ``root`` with ``{SPAN}`` for
    # the span number, e.g. ``span-{SPAN}/*.csv`` (TFX's own span support).
    # Empty reads every ``*.csv`` directly under ``root`` as one span (span 0).
    span_pattern: str = ""
    # The span a run ingests; None takes the latest (the greatest number).
    span: Integer | None = None
    # The Trainer's rolling window: this run's span and the spans before it,
    # this many in all (1: the run's span alone).
    training_spans: Count = 1
    # How a run finds the earlier spans it needs. by_span: by span number, the
    # newest span below the run's for drift, and the training_spans - 1 below
    # it for the window. latest: TFX's stock LatestArtifactStrategy, the newest
    # artifacts by time: drift against the previous run's statistics, and
    # training on the run's span alone (the only one Vertex AI compiles).
    # none: no resolver (Kubeflow Pipelines' backend runs none): no drift
    # check against an earlier span, training on the run's span alone.
    span_resolution: str = "by_span"
    # Cells that mean "missing", besides an empty one. ExampleGen, the CSV
    # check and `tfxp data`/`tfxp schema` read them alike: a numeric column
    # with NA in it stays numeric.
    missing_values: tuple[str, ...] = MISSING_VALUES

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if not self.root:
            _fail("data.root", self.root, "give the directory holding the CSV files")
        if not self.schema_file:
            _fail("data.schema_file", self.schema_file, "give the curated schema.pbtxt")
        if self.span_pattern and (
            self.span_pattern.count("{SPAN}") != 1 or self.span_pattern.startswith("/")
        ):
            _fail(
                "data.span_pattern",
                self.span_pattern,
                "give a pattern relative to data.root with {SPAN} once, e.g. span-{SPAN}/*.csv",
            )
        if self.span_resolution not in _SPAN_RESOLUTIONS:
            _fail("data.span_resolution", self.span_resolution, f"must be one of {', '.join(_SPAN_RESOLUTIONS)}")
        if self.span_resolution != "by_span" and self.training_spans != 1:
            _fail(
                "data.training_spans",
                self.training_spans,
                "a window of several spans needs data.span_resolution: by_span (local runs; "
                "Vertex AI compiles only TFX's own resolvers, which cannot find a run's own span reliably)",
            )
        if not all(v.strip() for v in self.missing_values):
            _fail("data.missing_values", self.missing_values, 'must be a list of non-empty strings, e.g. [NA, "null"]')
        if self.span is not None:
            if not self.span_pattern:
                _fail("data.span", self.span, "choosing a span needs data.span_pattern (e.g. span-{SPAN}/*.csv)")
            if self.span < 0:
                _fail("data.span", self.span, "must be a span number >= 0")
        return self

    @property
    def test_fraction(self) -> float:
        return self.test_buckets / (self.train_buckets + self.eval_buckets + self.test_buckets)


class TrainingConfig(HParams):
    """Trainer settings: the model's hyperparameters (their defaults live in HParams) and the steps."""

    train_steps: Count = 1000
    eval_steps: Count = 20

    @property
    def hparams(self) -> HParams:
        return HParams.model_validate(self.model_dump(include=set(HParams.model_fields)))


class TuningConfig(Frozen):
    """Hyperparameter search with TFX's Tuner before the Trainer (search space: models/tuning.py).

    Each trial trains ``steps_per_trial`` steps and is scored by its AUC on the
    eval split; the Trainer then trains ``training.train_steps`` steps with the
    best trial's values. ``parallel_trials`` > 1 runs trials as Vertex AI
    custom jobs (needs vertex.training_machine_type).
    """

    enabled: bool = False
    max_trials: Count = 8
    steps_per_trial: Count = 300
    executions_per_trial: Count = 1
    parallel_trials: Count = 1


# Metrics the Evaluator computes that a threshold may name: higher is better
# for each. (Calibration, mean label and mean prediction are computed too, for
# review, but have no direction to gate on.)
GATE_METRICS = ("auc", "auc_precision_recall", "binary_accuracy", "precision", "recall")


def _check_metric_bounds(field: str, bounds: Mapping[str, Any], low: float, high: float) -> None:
    for metric, value in bounds.items():
        if metric not in GATE_METRICS:
            _fail(
                f"{field}.{metric}",
                value,
                f"{metric!r} is not a metric the Evaluator computes; choose from {', '.join(GATE_METRICS)}",
            )
        if not low <= value <= high:
            _fail(f"{field}.{metric}", value, f"must be a number in [{low}, {high}]")


class EvalConfig(Frozen):
    """TFMA thresholds that decide the blessing, on the test split.

    Every threshold is a mapping of metric name (``GATE_METRICS``) to a number.
    "Against the baseline" means against the latest blessed model, evaluated in
    the same run on the same rows; on the first run there is none and only the
    floors apply.
    """

    # Absolute floors on the whole test split. None by default: floors fit to
    # one dataset refuse good models on another. The default gate is relative
    # (min_lift_over_majority, min_lift_over_rule); the taxi profiles add
    # floors of their own.
    floors: dict[str, Number] = Field(default_factory=dict)
    # Largest drop on the whole test split against the baseline.
    max_drops: dict[str, Number] = Field(default_factory=lambda: {"auc": 0.01})
    # Floors on every slice big enough to judge (below). AUC 0.5 is chance: 0.6
    # refuses a model at chance on any judged slice, with room for the sampling
    # noise of a 200-row slice (about 0.04 AUC at one standard deviation).
    slice_floors: dict[str, Number] = Field(default_factory=lambda: {"auc": 0.6})
    # Largest drop on any judged slice against the baseline. Wider than the
    # overall one: a retrain on the same data moves a 200-row slice's AUC by a
    # few hundredths by chance alone.
    slice_max_drops: dict[str, Number] = Field(default_factory=lambda: {"auc": 0.1})
    # A slice is judged only with at least this many test examples, and at least
    # slice_min_class_examples of each class: AUC on a slice with one positive
    # (cash rides) is decided by that one row. Smaller slices are reported, never gate.
    slice_min_examples: Count = 200
    slice_min_class_examples: Count = 10
    # Slices crossed from two or more slice features (each single slice feature
    # of the feature spec is sliced on its own as well).
    crossed_slices: tuple[tuple[str, ...], ...] = ()
    # The simple rule evaluated beside the model: the train split's positive
    # rate per value of this categorical feature; auto fits one per
    # categorical feature and keeps the best on the eval split.
    rule_feature: str = "auto"
    # How much the model must beat the rule by on the whole test split, per
    # metric. Empty: the rule is shown, never gates.
    min_lift_over_rule: dict[str, Number] = Field(default_factory=lambda: {"auc": 0.01})
    # How much the model's binary_accuracy must beat the majority class's
    # (always predicting the commoner label) on the whole test split.
    min_lift_over_majority: dict[str, Number] = Field(default_factory=lambda: {"binary_accuracy": 0.01})
    # How the baseline is found: the latest blessed model trained before the
    # candidate (re-runs are fully cached), or TFX's stock latest blessed model
    # (the only one Vertex AI compiles), or none: no baseline, so the drop
    # thresholds never apply (Kubeflow Pipelines' backend runs no resolver).
    baseline: str = "blessed_before_candidate"
    # The spec's slice features (slice: true), filled in by PipelineConfig.
    slice_features: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_metric_bounds("eval.floors", self.floors, 0, 1)
        _check_metric_bounds("eval.max_drops", self.max_drops, 0, 1)
        _check_metric_bounds("eval.slice_floors", self.slice_floors, 0, 1)
        _check_metric_bounds("eval.slice_max_drops", self.slice_max_drops, 0, 1)
        _check_metric_bounds("eval.min_lift_over_rule", self.min_lift_over_rule, -1, 1)
        _check_metric_bounds("eval.min_lift_over_majority", self.min_lift_over_majority, -1, 1)
        if set(self.min_lift_over_majority) - {"binary_accuracy"}:
            _fail(
                "eval.min_lift_over_majority",
                dict(self.min_lift_over_majority),
                "only binary_accuracy has a majority-class baseline",
            )
        for i, cross in enumerate(self.crossed_slices):
            if len(cross) < 2 or len(set(cross)) != len(cross):
                _fail(f"eval.crossed_slices[{i}]", cross, "give two or more different feature names")
        if self.baseline not in _BASELINES:
            _fail("eval.baseline", self.baseline, f"must be one of {', '.join(_BASELINES)}")
        return self

    def check_against(self, spec: FeatureSpec) -> None:
        """Raise ValueError naming the eval field that names a feature the spec lacks."""
        known = {f.name for f in spec.features}
        for i, cross in enumerate(self.crossed_slices):
            for name in cross:
                if name not in known:
                    _fail(
                        f"eval.crossed_slices[{i}]",
                        cross,
                        f"{name!r} is not in the feature spec; features: {', '.join(sorted(known))}",
                    )
        categorical = [f.name for f in spec.features if f.kind is not Kind.NUMERIC]
        if self.rule_feature != "auto" and self.rule_feature not in categorical:
            _fail(
                "eval.rule_feature",
                self.rule_feature,
                f"the rule needs auto or a categorical feature of the feature spec: one of {', '.join(categorical)}",
            )

    @property
    def slices(self) -> tuple[tuple[str, ...], ...]:
        """Every slice the Evaluator cuts, as feature-name tuples (overall not included)."""
        return tuple((key,) for key in self.slice_features) + self.crossed_slices


_ACTIONS = ("fail", "warn")


class ValidationConfig(Frozen):
    """What the data gate does with each finding: ``fail`` the run or ``warn`` and go on.

    ``on_kind`` maps a finding's kind to an action, overriding ``on_anomaly``:
    a TFDV anomaly type (``SCHEMA_NEW_COLUMN``, ``COMPARATOR_L_INFTY_HIGH``...)
    or a source, ``schema`` (ExampleValidator against schema/schema.pbtxt) or
    ``drift`` (this span against the previous one). The most specific wins.
    """

    on_anomaly: str = "fail"
    on_kind: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        from tensorflow_metadata.proto.v0 import anomalies_pb2

        if self.on_anomaly not in _ACTIONS:
            _fail("validation.on_anomaly", self.on_anomaly, "must be fail or warn")
        kinds = ("schema", "drift", *anomalies_pb2.AnomalyInfo.Type.keys())
        for kind, action in self.on_kind.items():
            if kind not in kinds:
                _fail(
                    f"validation.on_kind.{kind}",
                    action,
                    f"{kind!r} is not a kind: use schema, drift, or a TFDV anomaly type such as "
                    "SCHEMA_NEW_COLUMN or COMPARATOR_L_INFTY_HIGH",
                )
            if action not in _ACTIONS:
                _fail(f"validation.on_kind.{kind}", action, "must be fail or warn")
        return self

    def policy_json(self) -> str:
        """The policy as the gate component takes it (part of its cache key)."""
        return json.dumps({"on_anomaly": self.on_anomaly, "on_kind": dict(sorted(self.on_kind.items()))})


class BeamConfig(Frozen):
    """How Beam runs the heavy steps (DirectRunner locally)."""

    runner: str = "DirectRunner"
    direct_running_mode: str = "in_memory"
    direct_num_workers: Integer = 1
    # DataflowRunner only (project, region and the image come from vertex.*).
    machine_type: str = "n1-standard-4"
    max_num_workers: Count = 10
    # PortableRunner only: a Flink or Spark job server (host:port), and how its
    # workers run the Python SDK harness: DOCKER (the pipeline image, the
    # default), EXTERNAL (a worker pool at environment_config, e.g.
    # localhost:50000 beside each task manager) or PROCESS.
    job_endpoint: str = ""
    environment_type: str = "DOCKER"
    environment_config: str = ""
    extra_args: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.runner not in _RUNNERS:
            _fail("beam.runner", self.runner, f"must be one of {', '.join(_RUNNERS)}")
        if self.direct_running_mode not in _RUNNING_MODES:
            _fail(
                "beam.direct_running_mode",
                self.direct_running_mode,
                f"must be one of {', '.join(_RUNNING_MODES)}",
            )
        if self.direct_num_workers < 0:
            _fail("beam.direct_num_workers", self.direct_num_workers, "must be >= 0 (0 = all cores)")
        if self.runner == "PortableRunner" and not self.job_endpoint:
            _fail(
                "beam.job_endpoint",
                self.job_endpoint,
                "PortableRunner needs the Flink or Spark job server, e.g. flink-jobserver:8099",
            )
        if self.environment_type not in _ENVIRONMENT_TYPES:
            _fail("beam.environment_type", self.environment_type, f"must be one of {', '.join(_ENVIRONMENT_TYPES)}")
        if self.environment_type != "DOCKER" and self.runner == "PortableRunner" and not self.environment_config:
            _fail(
                "beam.environment_config",
                self.environment_config,
                f"{self.environment_type} needs it: e.g. localhost:50000 (EXTERNAL) or a JSON command (PROCESS)",
            )
        return self


class ServingConfig(Frozen):
    """Where Pusher writes the model for TF Serving."""

    model_name: str = "taxi"
    # Empty means <output_dir>/serving_model.
    serving_dir: str = ""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not _MODEL_NAME.fullmatch(self.model_name or ""):
            _fail("serving.model_name", self.model_name, "use letters, digits, '_', '-' or '.'")
        return self


class MonitoringConfig(Frozen):
    """``tfxp monitor``: which request log, how big a window, and the bounds on predictions.

    Skew and drift thresholds are the schema's comparators; these bound the
    served scores against the same model's scores on its eval split.
    """

    # Empty: <output_dir>/request_log (where `make demo-loop` serves with logging on).
    request_log_dir: str = ""
    # The window when none is given: the newest this many rows (and the same number before, for drift).
    window_rows: Count = 1000
    # A smaller window gets no verdict: on a few hundred rows, sampling noise alone
    # moves a many-valued feature (77 community areas) past a 0.05 threshold.
    min_window_rows: Count = 300
    # Largest change of the mean served score from the eval split's.
    max_prediction_mean_shift: Number = 0.1
    # Largest Jensen-Shannon divergence (bits) between the served and eval score histograms.
    max_prediction_distance: Number = 0.1

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in ("max_prediction_mean_shift", "max_prediction_distance"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                _fail(f"monitoring.{name}", value, "must be a number in (0, 1]")
        return self


class TrackingConfig(Frozen):
    """Experiment tracking: where each run is logged besides ML Metadata."""

    # An MLflow tracking URI (sqlite:///ABS/PATH/mlflow.db, http://HOST:5000...);
    # empty logs nothing. A failed export never fails the run.
    mlflow_uri: str = ""
    # The MLflow experiment; empty uses the pipeline's name.
    experiment: str = ""


class VertexConfig(Frozen):
    """Vertex AI Pipelines: where and as whom the compiled pipeline runs."""

    project: str = ""
    region: str = ""
    service_account: str = ""
    # The pipeline image (top-level Dockerfile): every Vertex executor and the
    # Dataflow workers run it.
    image_uri: str = ""
    # Declare data.root and training.train_steps as runtime parameters that a
    # submission can override.
    runtime_parameters: bool = False
    # Non-empty: train as a Vertex AI custom job on this machine type.
    training_machine_type: str = ""
    # Non-empty: push the blessed model to this Vertex AI Endpoint.
    endpoint_name: str = ""
    endpoint_machine_type: str = "n1-standard-4"
    serving_image_uri: str = ""

    def check(self, pipeline_root: str) -> None:
        """Raise ValueError naming every field that stops a Vertex compile or submit."""
        problems = []
        if not self.project:
            problems.append("vertex.project is missing: set it in the profile or pass --project")
        if not self.region:
            problems.append("vertex.region is missing: set it in the profile or pass --region (e.g. us-central1)")
        if not pipeline_root.startswith("gs://"):
            problems.append(
                f"output_dir={pipeline_root!r} must be a gs:// path: Vertex AI writes artifacts to Cloud Storage"
            )
        problems += _image_problems("vertex.image_uri", self.image_uri, "REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG")
        if problems:
            raise ValueError("cannot target Vertex AI:\n  - " + "\n  - ".join(problems))


def _image_problems(field: str, uri: str, example: str) -> list[str]:
    """What stops ``uri`` from naming the one pipeline image every step runs."""
    if not uri:
        return [f"{field} is missing: build and push the Dockerfile, then set its URI (e.g. {example})"]
    if not _IMAGE_URI.fullmatch(uri):
        return [f"{field}={uri!r} is not an image reference like {example} (a tag or @sha256 digest is required)"]
    if uri.endswith(":latest"):
        return [
            f"{field}={uri!r} uses the moving tag :latest: a rerun, or a step taken from the cache, "
            "could run another image than the one this job was compiled for; "
            "push with a version tag (e.g. taxi-pipeline:v1) or pin the digest (IMAGE@sha256:...)"
        ]
    return []


# TFX's executors open the pipeline root with TensorFlow's file systems: gs://
# is built in, s3:// (also KFP's MinIO, through its S3 API) comes with
# tensorflow-io; they have no minio://.
_KUBEFLOW_ROOTS = ("gs://", "s3://")


class KubeflowConfig(Frozen):
    """Open-source Kubeflow Pipelines 2.x: the image, and where `tfxp submit --target kubeflow` sends runs."""

    # The pipeline image (top-level Dockerfile): every step's pod runs it.
    image_uri: str = ""
    # The KFP API, e.g. http://localhost:8080 after a port-forward; --host overrides.
    host: str = ""
    # Multi-user Kubeflow: the profile namespace runs go to; --namespace overrides.
    namespace: str = ""
    experiment: str = "Default"
    # Declare data_root and train_args as runtime parameters a run can override.
    runtime_parameters: bool = False

    def check(self, pipeline_root: str) -> None:
        """Raise ValueError naming every field that stops a Kubeflow compile."""
        problems = _image_problems("kubeflow.image_uri", self.image_uri, "registry.example.com/tfx/taxi-pipeline:v1")
        if not pipeline_root.startswith(_KUBEFLOW_ROOTS):
            problems.append(
                f"output_dir={pipeline_root!r} must be a gs:// or s3:// path (s3://mlpipeline/... is KFP's own "
                "MinIO): each step runs in its own pod, and TFX's executors open artifacts with TensorFlow's "
                "file systems, which know gs:// and (with tensorflow-io) s3://, not minio://"
            )
        if problems:
            raise ValueError("cannot target Kubeflow Pipelines:\n  - " + "\n  - ".join(problems))


def _feature_spec(value: Any, info: ValidationInfo) -> Any:
    """A profile's ``features``: a spec file's path (relative to the project root) or an inline block."""
    if isinstance(value, str):
        path = Path(value).expanduser()
        return load_spec(path if path.is_absolute() else project_root() / path)
    if isinstance(value, Mapping):
        return spec_from_dict(value, source=f"{(info.context or {}).get('source', 'config')}: features")
    return value


class PipelineConfig(Frozen):
    """The whole pipeline's config."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    data: DataConfig
    # The feature spec and label: a spec file (models/features.yaml, the
    # taxi spec, by default) or a profile's features: block.
    features: Annotated[FeatureSpec, BeforeValidator(_feature_spec)] = Field(default_factory=load_spec)
    name: str = "taxi-pipeline"
    output_dir: str = "outputs"
    enable_cache: bool = True
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    vertex: VertexConfig = Field(default_factory=VertexConfig)
    kubeflow: KubeflowConfig = Field(default_factory=KubeflowConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not _PIPELINE_NAME.fullmatch(self.name or ""):
            _fail(
                "name",
                self.name,
                "pipeline names must match [a-z0-9][a-z0-9-]{0,127} (Vertex AI's rule)",
            )
        if not self.output_dir:
            _fail("output_dir", self.output_dir, "give a directory")
        self.eval.check_against(self.features)
        if self.tuning.parallel_trials > 1 and not self.vertex.training_machine_type:
            _fail(
                "tuning.parallel_trials",
                self.tuning.parallel_trials,
                "parallel trials run as Vertex AI custom jobs: set vertex.training_machine_type, or use 1",
            )
        # Frozen: the spec's slice features are copied into eval once, here.
        object.__setattr__(self, "eval", self.eval.model_copy(update={"slice_features": self.features.slice_keys()}))
        return self

    @property
    def pipeline_root(self) -> str:
        return f"{self.output_dir.rstrip('/')}/tfx_root"

    @property
    def metadata_path(self) -> str:
        return f"{self.output_dir.rstrip('/')}/metadata.sqlite"

    @property
    def is_local(self) -> bool:
        """Outputs on the local filesystem (MLMD in SQLite there); else in the cloud."""
        return "://" not in self.output_dir

    def beam_pipeline_args(self) -> list[str]:
        """Beam options for the heavy steps: DirectRunner here, Dataflow in the cloud, or a Flink/Spark cluster."""
        b = self.beam
        # In a Kubeflow pod the image holds every dependency: saying so stops TFX
        # from building and staging an sdist of itself for each Beam step.
        image = [f"--sdk_container_image={self.kubeflow.image_uri}"] if self.kubeflow.image_uri else []
        if b.runner == "DirectRunner":
            # Only what differs from Beam's defaults (in_memory, 1 worker): given any
            # Beam args without a dependency flag, TFX builds a 49 MB sdist of itself
            # for every Beam component (1.7 s each) and leaves it in the system temp
            # dir, which an in-process runner never reads (docs/performance.md).
            args = []
            if b.direct_running_mode != BEAM_DEFAULT_MODE:
                args.append(f"--direct_running_mode={b.direct_running_mode}")
            if b.direct_num_workers != BEAM_DEFAULT_WORKERS:
                args.append(f"--direct_num_workers={b.direct_num_workers}")
            return [*args, *image, *b.extra_args]
        if b.runner == "PortableRunner":
            harness = b.environment_config or (self.kubeflow.image_uri if b.environment_type == "DOCKER" else "")
            return [
                "--runner=PortableRunner",
                f"--job_endpoint={b.job_endpoint}",
                f"--environment_type={b.environment_type}",
                *([f"--environment_config={harness}"] if harness else []),
                *image,
                *b.extra_args,
            ]
        return [
            "--runner=DataflowRunner",
            f"--project={self.vertex.project}",
            f"--region={self.vertex.region}",
            f"--temp_location={self.output_dir.rstrip('/')}/beam_tmp",
            f"--sdk_container_image={self.vertex.image_uri}",
            f"--machine_type={b.machine_type}",
            f"--max_num_workers={b.max_num_workers}",
            "--experiments=use_runner_v2",
            *([f"--service_account_email={self.vertex.service_account}"] if self.vertex.service_account else []),
            *b.extra_args,
        ]

    @property
    def log_dir(self) -> str:
        return f"{self.output_dir.rstrip('/')}/logs"

    @property
    def serving_dir(self) -> str:
        return self.serving.serving_dir or f"{self.output_dir.rstrip('/')}/serving_model"

    @property
    def request_log_dir(self) -> str:
        return self.monitoring.request_log_dir or f"{self.output_dir.rstrip('/')}/request_log"

    @property
    def model_base_path(self) -> str:
        """The directory TF Serving watches: numeric version subdirectories."""
        return f"{self.serving_dir.rstrip('/')}/{self.serving.model_name}"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def profile_path(profile: str) -> Path:
    """A profile name (``local``) or the path of a profile YAML file."""
    if profile.endswith((".yaml", ".yml")):
        path = Path(profile).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"profile file {path} does not exist")
        return path
    path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise ValueError(
            f"unknown profile {profile!r}: no file {path}; "
            f"available profiles: {', '.join(available_profiles())}, or give a path to a .yaml file"
        )
    return path


def setting_source(profile: str, dotted: str, overrides: Mapping[str, Any] | None = None) -> str:
    """Where a setting's value came from: an override, the profile file, or the default.

    ``dotted`` is a config path such as ``eval.floors.auc``; a mapping entry is
    looked up by its mapping (``eval.floors``), since a profile sets it whole.
    """
    for key in overrides or {}:
        if dotted == key or dotted.startswith(key + "."):
            return "a command-line override"
    path = profile_path(profile)
    node: Any = yaml.safe_load(path.read_text()) or {}
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            break
        node = node[part]
    else:
        return _shown(path)
    parent = dotted.rsplit(".", 1)[0]
    node = yaml.safe_load(path.read_text()) or {}
    for part in parent.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is not None:
        return _shown(path)
    section, _, name = dotted.partition(".")
    if section == "training" and name in HParams.model_fields:
        return "the default in models/hparams.py"
    return "the default in pipeline/config.py"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def load_config(profile: str = "local", overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Build the config from a profile (name or YAML path) plus ``{"section.field": value}`` overrides.

    Relative paths in a profile are resolved against the project root.
    """
    path = profile_path(profile)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        problem = getattr(exc, "problem", None) or exc
        raise ValueError(f"{path}{line}: not valid YAML ({problem}); fix the file") from None
    if not isinstance(raw, dict):
        raise ValueError(f"profile {path} must be a YAML mapping of config fields")
    for key, value in (overrides or {}).items():
        _set(raw, key, value)
    return _resolve_paths(from_dict(raw, source=str(path)))


def _resolve_paths(cfg: PipelineConfig) -> PipelineConfig:
    """Make relative local paths (from the profile or the defaults) project-root based."""
    root = project_root()

    def absolute(value: str) -> str:
        if not value or "://" in value or Path(value).is_absolute():
            return value
        return str(root / value)

    return cfg.model_copy(
        update={
            "output_dir": absolute(cfg.output_dir),
            "data": cfg.data.model_copy(
                update={"root": absolute(cfg.data.root), "schema_file": absolute(cfg.data.schema_file)}
            ),
            "serving": cfg.serving.model_copy(update={"serving_dir": absolute(cfg.serving.serving_dir)}),
            "monitoring": cfg.monitoring.model_copy(
                update={"request_log_dir": absolute(cfg.monitoring.request_log_dir)}
            ),
        }
    )


def from_dict(raw: Mapping[str, Any], source: str = "config") -> PipelineConfig:
    """Build a PipelineConfig from nested plain values; every bad value is one line naming ``source`` and the field."""
    if "data" not in raw:
        raise ValueError(f"{source}: config section 'data' (with data.root) is required")
    try:
        return PipelineConfig.model_validate(raw, context={"source": source})
    except ValidationError as exc:
        raise ValueError("\n".join(_problems(exc, source))) from None


def _problems(exc: ValidationError, source: str) -> list[str]:
    """One line per bad value; unknown fields grouped by section, with the known ones."""
    lines: list[str] = []
    unknown: dict[tuple[str, ...], list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(str(part) for part in err["loc"])
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        if err["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(dotted)
            continue
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError) or str(cause).startswith(source):
            lines.append(str(cause) if str(cause).startswith(source) else f"{source}: {cause}")
        elif err["type"] == "missing":
            lines.append(f"{source}: config field {dotted} is missing")
        else:
            why = str(cause) if cause is not None else err["msg"]
            lines.append(f"{source}: config field {dotted}={err['input']!r} is invalid: {why}")
    for section, names in unknown.items():
        known = sorted(".".join((*section, name)) for name in _model_at(section).model_fields)
        lines.append(f"{source}: unknown field(s) {sorted(names)}; known: {known}")
    return lines


def _model_at(section: tuple[str, ...]) -> type[Frozen]:
    model: type[Frozen] = PipelineConfig
    for part in section:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"config override {dotted!r}: {part!r} is not a section")
    node[leaf] = value
