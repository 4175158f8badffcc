"""Server options: one frozen dataclass tree, validated on construction.

Model lists come either from ``--model_name``/``--model_base_path`` or from a
text-format ``ModelServerConfig`` (``models.config``), parsed with the protos
that ship in tensorflow-serving-api, so one file serves both this server and
the real TF Serving. Batching parameters use TF Serving's
``--batching_parameters_file`` text format, and ``--monitoring_config_file``
its text-format ``MonitoringConfig`` (``monitoring.config``). A file that does
not parse is refused with protobuf's reason, worded as TF Serving words it:
"Error parsing text-format tensorflow.serving.ModelServerConfig: 1:1 : ...".
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal

logger = logging.getLogger(__name__)

_MODEL_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_LABEL = re.compile(r"[A-Za-z0-9_]+")
MIB = 1024 * 1024
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath
_MAX_UNIX_SOCKET_PATH = 107  # sockaddr_un.sun_path holds 108 bytes with the terminating NUL
ChannelArgument = tuple[str, int | str]  # a gRPC channel argument: key, int or string value


def _fail(field: str, value: object, hint: str) -> None:
    raise ValueError(f"{field}={value!r} is invalid: {hint}")


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which numeric version directories to serve, as TF Serving's model_version_policy."""

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "all", "specific"):
            _fail("version_policy", self.kind, "use latest, all or specific")
        if self.kind == "latest" and self.num_versions < 1:
            _fail("latest.num_versions", self.num_versions, "serve at least 1 version")
        if self.kind == "specific" and not self.versions:
            _fail("specific.versions", self.versions, "list at least one version")

    def select(self, versions: Iterable[int]) -> set[int]:
        """The versions to serve out of those present on disk."""
        present = sorted(set(versions), reverse=True)
        if self.kind == "latest":
            return set(present[: self.num_versions])
        if self.kind == "all":
            return set(present)
        return set(present) & set(self.versions)

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "specific":
            return "specific " + ",".join(str(v) for v in self.versions)
        return "all"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One served model: a name (a lookup key only) and the base path it is polled from."""

    name: str
    base_path: str
    policy: VersionPolicy = dataclasses.field(default_factory=VersionPolicy)
    labels: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Vertex AI's layout (AIP_STORAGE_URI): a SavedModel at base_path itself, served as version 1
    # when base_path has no numeric version directories. TF Serving has no such layout.
    root_as_version_1: bool = False

    def __post_init__(self) -> None:
        if not _MODEL_NAME.fullmatch(self.name or ""):
            _fail("model name", self.name, "use letters, digits, '_', '-' or '.'")
        if not self.base_path:
            _fail(
                f"base_path of model {self.name!r}", self.base_path, "give the directory the Pusher writes to"
            )
        check_filesystem(self.base_path, f"base_path of model {self.name!r}")
        for label, version in self.labels.items():
            if not _LABEL.fullmatch(label):
                _fail(f"version label of model {self.name!r}", label, "labels match [a-zA-Z0-9_]+")
            if version < 0:
                _fail(f"version label {label!r} of model {self.name!r}", version, "versions are >= 0")
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """Server-side batching, as TF Serving's BatchingParameters."""

    max_batch_size: int = 128
    # 0: a free worker takes whatever has queued up, without waiting for more.
    batch_timeout_micros: int = 0
    # 0: use ServerOptions.inference_threads.
    num_batch_threads: int = 0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            _fail("max_batch_size", self.max_batch_size, "must be >= 1")
        if self.batch_timeout_micros < 0:
            _fail("batch_timeout_micros", self.batch_timeout_micros, "must be >= 0")
        if self.num_batch_threads < 0:
            _fail("num_batch_threads", self.num_batch_threads, "must be >= 0")


@dataclasses.dataclass(frozen=True)
class RequestLogOptions:
    """Sampled request/response logging to TFRecord files of tf.Example (TFDV reads them)."""

    directory: str = ""  # empty: logging off
    sampling_rate: float = 0.0
    max_file_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        if not 0.0 <= self.sampling_rate <= 1.0:
            _fail("request_log_sampling_rate", self.sampling_rate, "use a fraction in [0, 1]")
        if self.max_file_bytes < 4096:
            _fail("request_log_max_file_bytes", self.max_file_bytes, "use at least 4096 bytes")

    @property
    def enabled(self) -> bool:
        return bool(self.directory) and self.sampling_rate > 0


@dataclasses.dataclass(frozen=True)
class VertexRoutes:
    """Vertex AI's custom-container routes ($AIP_PREDICT_ROUTE, $AIP_HEALTH_ROUTE) for one model.

    An empty route is not served; TF Serving's own routes are served either way.
    """

    model: str
    predict: str = ""
    health: str = ""

    def __post_init__(self) -> None:
        for field in ("predict", "health"):
            route = getattr(self, field)
            if route and not route.startswith("/"):
                _fail(f"AIP_{field.upper()}_ROUTE", route, "use an absolute URL path, e.g. /predict")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything ``tfxp serve`` is configured with. Flag names follow TF Serving's."""

    models: tuple[ModelSpec, ...] = ()
    model_config_file: str = ""  # if set, models come from (and are reloaded from) it
    model_config_file_poll_wait_seconds: float = 0.0  # 0: read the config file once
    host: str = "127.0.0.1"
    port: int | None = 8500  # gRPC; 0 picks a free port, None disables gRPC
    rest_api_port: int | None = 8501  # None disables REST; 0 picks a free port
    file_system_poll_wait_seconds: float = 1.0
    rest_api_timeout_in_ms: int = 30_000
    enable_batching: bool = False
    batching: BatchingOptions = dataclasses.field(default_factory=BatchingOptions)
    inference_threads: int = dataclasses.field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    # Requests admitted at once (queued or running) over REST and gRPC together.
    max_queued_requests: int = 128
    max_request_bytes: int = 8 * MIB
    request_log: RequestLogOptions = dataclasses.field(default_factory=RequestLogOptions)
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    grpc_socket_path: str = ""  # if set, gRPC also listens on this unix socket
    # Applied to the gRPC server after this server's own options, so they win (TF Serving's order).
    grpc_channel_arguments: tuple[ChannelArgument, ...] = ()
    # Where REST serves Prometheus metrics; None: nowhere (a MonitoringConfig with enable: false).
    prometheus_path: str | None = PROMETHEUS_PATH
    # Vertex AI's predict and health routes, served over REST besides TF Serving's (tfxp serve --vertex).
    vertex: VertexRoutes | None = None

    def __post_init__(self) -> None:
        if not self.models and not self.model_config_file:
            _fail("models", self.models, "give --model_name and --model_base_path, or --model_config_file")
        names = [m.name for m in self.models]
        if len(names) != len(set(names)):
            _fail("models", names, "model names must be unique")
        if self.port is not None and not 0 <= self.port <= 65535:
            _fail("port", self.port, "use a TCP port (0 picks a free one)")
        if self.rest_api_port is not None and not 0 <= self.rest_api_port <= 65535:
            _fail("rest_api_port", self.rest_api_port, "use a TCP port (0 picks a free one)")
        if self.file_system_poll_wait_seconds <= 0:
            _fail("file_system_poll_wait_seconds", self.file_system_poll_wait_seconds, "must be > 0")
        if self.model_config_file_poll_wait_seconds < 0:
            _fail(
                "model_config_file_poll_wait_seconds",
                self.model_config_file_poll_wait_seconds,
                "must be >= 0",
            )
        if self.rest_api_timeout_in_ms <= 0:
            _fail("rest_api_timeout_in_ms", self.rest_api_timeout_in_ms, "must be > 0")
        if self.inference_threads < 1:
            _fail("inference_threads", self.inference_threads, "must be >= 1")
        if self.max_queued_requests < 1:
            _fail("max_queued_requests", self.max_queued_requests, "must be >= 1")
        if self.max_request_bytes < 1024:
            _fail("max_request_bytes", self.max_request_bytes, "use at least 1024 bytes")
        if len(self.grpc_socket_path.encode()) > _MAX_UNIX_SOCKET_PATH:
            _fail(
                "grpc_socket_path",
                self.grpc_socket_path,
                f"unix socket paths hold at most {_MAX_UNIX_SOCKET_PATH} bytes; choose a shorter path",
            )
        for key, _value in self.grpc_channel_arguments:
            if not key:
                _fail("grpc_channel_arguments", self.grpc_channel_arguments, "every argument needs a key")
        path = self.prometheus_path
        if path is not None and (not path.startswith("/") or path.lower().startswith("/v1/")):
            _fail("prometheus_config.path", path, "use an absolute URL path outside /v1/, e.g. /metrics")

    @property
    def worker_threads(self) -> int:
        """Threads that run model calls."""
        if self.enable_batching and self.batching.num_batch_threads:
            return self.batching.num_batch_threads
        return self.inference_threads


def single_model(name: str, base_path: str) -> tuple[ModelSpec, ...]:
    """The model list of ``--model_name`` / ``--model_base_path``."""
    if not is_remote(base_path):
        base_path = str(Path(base_path).expanduser().resolve())
    return (ModelSpec(name, base_path),)


def is_remote(path: str) -> bool:
    """Whether ``path`` names a filesystem by scheme (gs://, s3://, ram://...), not a local path."""
    return "://" in path


def check_filesystem(path: str, field: str) -> None:
    """Refuse a base path whose scheme no TensorFlow filesystem reads (TF Serving reads through the same).

    Only the scheme is checked: an unreachable bucket is a runtime condition, logged
    and retried by the poller as TF Serving does, not a reason to refuse to start.
    """
    if not is_remote(path):
        return
    import tensorflow as tf

    scheme = path.split("://", 1)[0]
    for attempt in range(2):  # the second after loading tensorflow-io's filesystems, if installed
        try:
            tf.io.gfile.exists(path)
            return
        except tf.errors.UnimplementedError:
            if attempt == 0:
                _load_filesystem_plugins()
        except tf.errors.OpError:
            return  # the scheme is known; the poller reports what is wrong with the path
    _fail(
        field,
        path,
        f"TensorFlow has no filesystem for {scheme}:// (built in: gs://, ram://; s3:// and hdfs:// "
        "come with `pip install tensorflow-io`); use a local path or a scheme TensorFlow reads",
    )


def _load_filesystem_plugins() -> None:
    """Register tensorflow-io's filesystems (s3://, hdfs://...) if installed; TF Serving builds them in."""
    import importlib.util

    if importlib.util.find_spec("tensorflow_io") is not None:
        import tensorflow_io  # noqa: F401 - importing registers its filesystems


def parse_model_config(text: str, source: str = "<model config>") -> tuple[ModelSpec, ...]:
    """Parse a text-format ``tensorflow.serving.ModelServerConfig`` into model specs."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    _parse_text_format(text, config, source)
    return specs_from_proto(config, source)


def _parse_text_format(text: str, message, source: str) -> None:  # type: ignore[no-untyped-def]
    """text_format.Parse, failing as TF Serving's ParseProtoTextFile logs it (and naming the file)."""
    from google.protobuf import text_format

    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        name = message.DESCRIPTOR.full_name
        raise ValueError(f"{source}: Error parsing text-format {name}: {exc}") from exc


def specs_from_proto(config, source: str) -> tuple[ModelSpec, ...]:  # type: ignore[no-untyped-def]
    """Model specs of a ``tensorflow.serving.ModelServerConfig`` message."""
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{source}: only model_config_list is supported (custom_model_config is not)")
    specs = []
    for mc in config.model_config_list.config:
        where = f"{source}: model {mc.name or '<unnamed>'!r}"
        if mc.model_platform not in ("tensorflow", ""):
            raise ValueError(
                f'{where}: model_platform {mc.model_platform!r} is not supported; use "tensorflow"'
            )
        base_path = mc.base_path
        if base_path and not base_path.startswith("/") and not is_remote(base_path):
            # TF Serving resolves relative paths against its working directory;
            # anchor them at the config file instead, so the file is portable.
            base_path = str((Path(source).parent / base_path).resolve())
        try:
            specs.append(
                ModelSpec(mc.name, base_path, _policy(mc.model_version_policy), dict(mc.version_labels))
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    if not specs:
        raise ValueError(f"{source}: model_config_list has no config entries")
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError(f"{source}: model names must be unique, got {names}")
    return tuple(specs)


def _policy(proto) -> VersionPolicy:  # type: ignore[no-untyped-def]
    kind = proto.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy("all")
    if kind == "specific":
        return VersionPolicy("specific", versions=tuple(proto.specific.versions))
    if kind == "latest":
        return VersionPolicy("latest", num_versions=proto.latest.num_versions or 1)
    return VersionPolicy()


def _read_flag_file(path: str | Path, flag: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read --{flag} {path}: {exc.strerror}") from exc


def load_model_config_file(path: str | Path) -> tuple[ModelSpec, ...]:
    return parse_model_config(_read_flag_file(path, "model_config_file"), str(path))


@functools.lru_cache(maxsize=1)
def _monitoring_config_class() -> type:
    """tensorflow.serving.MonitoringConfig, built at run time: tensorflow-serving-api does not ship it.

    The fields are those of TF Serving's tensorflow_serving/config/monitoring_config.proto
    (2.16). A private descriptor pool, so nothing else that registers the proto can clash.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=field.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    factory = message_factory.MessageFactory(pool)
    return factory.GetPrototype(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def parse_monitoring_config(text: str, source: str = "<monitoring config>") -> str | None:
    """The Prometheus path a text-format ``MonitoringConfig`` asks for, as TF Serving reads it.

    ``prometheus_config { enable: true }`` serves metrics at PROMETHEUS_PATH, or at
    ``path`` if given; without ``enable: true`` there is no metrics endpoint (None).
    """
    config = _monitoring_config_class()()
    _parse_text_format(text, config, source)
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or PROMETHEUS_PATH


def load_monitoring_config_file(path: str | Path) -> str | None:
    return parse_monitoring_config(_read_flag_file(path, "monitoring_config_file"), str(path))


_INT32 = re.compile(r"\s*(-?\d+)\s*")


def parse_grpc_channel_arguments(text: str) -> tuple[ChannelArgument, ...]:
    """``--grpc_channel_arguments``: comma-separated ``key=value`` pairs for the gRPC server.

    As in TF Serving (server.cc), a value that reads as a 32-bit integer (tensorflow's
    safe_strto32: optional spaces and minus sign, digits) is passed as an int, any
    other as a string; gRPC itself ignores keys it does not know.
    """
    out: list[ChannelArgument] = []
    for item in text.split(","):
        if not item.strip():
            continue  # a trailing comma
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"--grpc_channel_arguments: {item!r} is not key=value; give comma-separated pairs, "
                "e.g. grpc.max_receive_message_length=1048576,grpc.max_connection_age_ms=60000"
            )
        number = _INT32.fullmatch(value)
        if number and -(1 << 31) <= int(number.group(1)) < (1 << 31):
            out.append((key.strip(), int(number.group(1))))
        else:
            out.append((key.strip(), value))
    return tuple(out)


_BATCHING_FIELD = re.compile(r"(\w+)\s*:?\s*\{\s*value\s*:\s*([^\s}]+)\s*\}")
_BATCHING_IGNORED = {
    "max_enqueued_batches",  # this server bounds admitted requests instead (max_queued_requests)
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
}


def parse_batching_parameters(text: str, source: str = "<batching parameters>") -> BatchingOptions:
    """Read TF Serving's batching parameters file (``max_batch_size { value: 128 }`` ...)."""
    stripped = re.sub(r"#.*", "", text)
    values: dict[str, int] = {}
    for name, raw in _BATCHING_FIELD.findall(stripped):
        if name in _BATCHING_IGNORED:
            logger.info("%s: %s is not used by this server", source, name)
            continue
        if name not in ("max_batch_size", "batch_timeout_micros", "num_batch_threads"):
            raise ValueError(f"{source}: unknown batching parameter {name!r}")
        try:
            values[name] = int(raw)
        except ValueError as exc:
            raise ValueError(f"{source}: {name} must be an integer, got {raw!r}") from exc
    leftover = _BATCHING_FIELD.sub("", stripped)
    leftover = re.sub(r"allowed_batch_sizes\s*:\s*\d+|\w+\s*:\s*(true|false)", "", leftover).strip()
    if leftover:
        raise ValueError(
            f"{source}: cannot parse {leftover[:60]!r}; expected lines like 'max_batch_size {{ value: 128 }}'"
        )
    return BatchingOptions(**values)
