"""``tfxp serve`` and ``tfxp predict``: plain typed functions, plus ``register(app)`` for the CLI.

Flag names follow TF Serving's ``tensorflow_model_server``, so its docs carry
over. Nothing heavy is imported until a command runs. Flags for what this server
does not do (TensorFlow Lite models, the profiler service) are accepted only
when they ask for nothing; otherwise ``serve`` stops at start-up and says so.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from serving.config import (
    MIB,
    BatchingOptions,
    ModelSpec,
    RequestLogOptions,
    ServerOptions,
    VertexRoutes,
    load_model_config_file,
    load_monitoring_config_file,
    parse_batching_parameters,
    parse_grpc_channel_arguments,
    single_model,
)

logger = logging.getLogger(__name__)


def build_options(
    model_name: str = "",
    model_base_path: str = "",
    model_config_file: str = "",
    model_config_file_poll_wait_seconds: float = 0.0,
    host: str = "127.0.0.1",
    port: int = 8500,
    rest_api_port: int = 8501,
    file_system_poll_wait_seconds: float = 1.0,
    rest_api_timeout_in_ms: int = 30_000,
    enable_batching: bool = False,
    batching_parameters_file: str = "",
    max_batch_size: int = 128,
    batch_timeout_micros: int = 0,
    num_batch_threads: int = 0,
    inference_threads: int = 0,
    max_queued_requests: int = 128,
    max_request_bytes: int = 8 * MIB,
    request_log_dir: str = "",
    request_log_sampling_rate: float = 0.0,
    request_log_max_file_bytes: int = 64 * MIB,
    tensorflow_intra_op_parallelism: int = 0,
    tensorflow_inter_op_parallelism: int = 0,
    grpc_socket_path: str = "",
    grpc_channel_arguments: str = "",
    monitoring_config_file: str = "",
    prefer_tflite_model: str = "",
    num_tflite_pools: int | None = None,
    num_tflite_interpreters_per_pool: int | None = None,
    enable_profiler: str = "",
) -> ServerOptions:
    """ServerOptions from TF Serving-style flags. Raises ValueError naming the bad flag."""
    tflite_pools = (num_tflite_pools, num_tflite_interpreters_per_pool)
    _refuse_out_of_scope(prefer_tflite_model, *tflite_pools, enable_profiler)
    if model_config_file and (model_name or model_base_path):
        raise ValueError("give either --model_config_file or --model_name/--model_base_path, not both")
    models: tuple[ModelSpec, ...] = ()
    if model_config_file:
        load_model_config_file(model_config_file)  # a file that does not parse stops start-up here
    else:
        if not model_base_path:
            raise ValueError(
                "--model_base_path is required (the Pusher's <serving_dir>/<model_name>), "
                "or give --model_config_file"
            )
        models = single_model(model_name or Path(model_base_path).name, model_base_path)
    if batching_parameters_file:
        try:
            text = Path(batching_parameters_file).read_text()
        except OSError as exc:
            raise ValueError(
                f"cannot read --batching_parameters_file {batching_parameters_file}: {exc.strerror}"
            ) from exc
        batching = parse_batching_parameters(text, batching_parameters_file)
    else:
        batching = BatchingOptions(max_batch_size, batch_timeout_micros, num_batch_threads)
    extra: dict[str, Any] = {}
    if inference_threads:
        extra["inference_threads"] = inference_threads
    if monitoring_config_file:  # without one, metrics stay at the default path (TF Serving: none)
        extra["prometheus_path"] = load_monitoring_config_file(monitoring_config_file)
    return ServerOptions(
        models=models,
        model_config_file=str(Path(model_config_file).resolve()) if model_config_file else "",
        model_config_file_poll_wait_seconds=model_config_file_poll_wait_seconds,
        host=host,
        port=port,
        # TF Serving's convention: --rest_api_port=0 turns REST off.
        rest_api_port=rest_api_port or None,
        file_system_poll_wait_seconds=file_system_poll_wait_seconds,
        rest_api_timeout_in_ms=rest_api_timeout_in_ms,
        enable_batching=enable_batching or bool(batching_parameters_file),
        batching=batching,
        max_queued_requests=max_queued_requests,
        max_request_bytes=max_request_bytes,
        request_log=RequestLogOptions(request_log_dir, request_log_sampling_rate, request_log_max_file_bytes),
        tensorflow_intra_op_parallelism=tensorflow_intra_op_parallelism,
        tensorflow_inter_op_parallelism=tensorflow_inter_op_parallelism,
        grpc_socket_path=grpc_socket_path,
        grpc_channel_arguments=parse_grpc_channel_arguments(grpc_channel_arguments),
        **extra,
    )


def vertex_options(env: Mapping[str, str], **flags: Any) -> ServerOptions:
    """ServerOptions for Vertex AI's custom-container contract, from its ``AIP_*`` environment variables.

    REST only, on ``$AIP_HTTP_PORT`` (default 8080); the model from ``$AIP_STORAGE_URI``
    (a SavedModel at its root is version 1; numeric version directories work too);
    predictions at ``$AIP_PREDICT_ROUTE`` and health at ``$AIP_HEALTH_ROUTE``, besides
    TF Serving's routes. Any other ``build_options`` flag applies as usual.
    """
    storage = env.get("AIP_STORAGE_URI", "")
    if not storage:
        raise ValueError(
            "--vertex: AIP_STORAGE_URI is not set; Vertex AI sets it to the model's directory, "
            "to run locally set it to a SavedModel directory"
        )
    for flag in ("model_base_path", "model_config_file", "grpc_socket_path"):
        if flags.pop(flag, ""):
            raise ValueError(f"--{flag} does not apply with --vertex (the model is $AIP_STORAGE_URI); drop it")
    http_port = env.get("AIP_HTTP_PORT", "8080")
    if not (http_port.isascii() and http_port.isdigit() and 0 < int(http_port) <= 65535):
        raise ValueError(f"AIP_HTTP_PORT={http_port!r} is invalid: use a TCP port, 1 to 65535")
    name = flags.pop("model_name", "") or "model"
    options = build_options(model_name=name, model_base_path=storage, rest_api_port=int(http_port), **flags)
    routes = VertexRoutes(name, env.get("AIP_PREDICT_ROUTE", ""), env.get("AIP_HEALTH_ROUTE", ""))
    models = tuple(dataclasses.replace(m, root_as_version_1=True) for m in options.models)
    return dataclasses.replace(options, models=models, port=None, vertex=routes)


# Why each is out of scope; the README's serving section says the same.
_NO_TFLITE = (
    "TensorFlow Lite models are out of scope for tfxp serve: it serves the SavedModel the Pusher "
    "writes. For a model.tflite, run the real tensorflow_model_server (serving/Dockerfile)."
)
_NO_PROFILER = (
    "the TensorFlow profiler service is out of scope for tfxp serve (TF Serving enables it by default); "
    "drop the flag or pass --enable_profiler=false, or profile under tensorflow_model_server."
)


def _refuse_out_of_scope(
    prefer_tflite_model: str,
    num_tflite_pools: int | None,
    num_tflite_interpreters_per_pool: int | None,
    enable_profiler: str,
) -> None:
    """Stop on a flag that asks for something this server does not do; never ignore it."""
    if _flag_bool("prefer_tflite_model", prefer_tflite_model):
        raise ValueError(f"--prefer_tflite_model: {_NO_TFLITE}")
    for flag, value in (
        ("num_tflite_pools", num_tflite_pools),
        ("num_tflite_interpreters_per_pool", num_tflite_interpreters_per_pool),
    ):
        if value is not None:
            raise ValueError(f"--{flag} tunes TensorFlow Lite serving. {_NO_TFLITE}")
    if _flag_bool("enable_profiler", enable_profiler):
        raise ValueError(f"--enable_profiler: {_NO_PROFILER}")


def _flag_bool(flag: str, value: str) -> bool:
    """A TF Serving boolean flag's value (``--flag=true``); empty: not given."""
    text = value.strip().lower()
    if text in ("", "false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise ValueError(f"--{flag}={value!r} is invalid: use true or false")


def require_serving_extra(command: str, *modules: str) -> None:
    """Stop in one line when the ``[serving]`` extra (setup.py) is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"{command} needs {', '.join(missing)}, from the serving extra: "
            "pip install -c requirements.lock '.[serving]' in the project's clone"
        )


def serve(options: ServerOptions, stop: threading.Event | None = None) -> None:
    """Run the server until ``stop`` is set, or SIGINT/SIGTERM in the main thread."""
    require_serving_extra("tfxp serve", "starlette", "uvicorn", "prometheus_client")
    from serving.server import start_server

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    with start_server(options):
        stop.wait()
        logger.info("stopping")


def predict(
    file: Path,
    url: str = "http://127.0.0.1:8501",
    model_name: str = "taxi",
    signature_name: str = "",
    version: int | None = None,
    label: str | None = None,
    limit: int | None = None,
    timeout: float = 30.0,
) -> tuple[list[dict[str, Any]], Any]:
    """Send the rows of a CSV/JSON file to a REST or gRPC server; return (rows, PredictResult)."""
    if not url.startswith("grpc://"):
        require_serving_extra("tfxp predict", "httpx")
    from serving.client import connect, read_rows

    with connect(url, model_name, version=version, label=label, timeout=timeout) as client:
        rows = read_rows(file, client.input_dtypes(signature_name), limit)
        return rows, client.predict(rows, signature_name)


def _setup_logging(verbose: bool = False) -> None:
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _ServeCommand(TyperCommand):
    """``serve`` reads TF Serving's boolean flags as tensorflow_model_server does: bare is true.

    So ``--enable_profiler`` and ``--enable_profiler=true`` both reach build_options,
    which refuses them; only ``=false`` (asking for nothing) starts the server.
    """

    _BOOLEAN_STRING_FLAGS = ("--prefer_tflite_model", "--enable_profiler")

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        args = [f"{a}=true" if a in self._BOOLEAN_STRING_FLAGS else a for a in args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``predict`` to the tfxp app."""

    @app.command("serve", cls=_ServeCommand)
    def serve_command(
        model_name: str = typer.Option(
            "", "--model_name", help="Name to serve the model under (default: the base path's last part)."
        ),
        model_base_path: str = typer.Option(
            "",
            "--model_base_path",
            help="Directory of numeric version subdirectories: <serving_dir>/<model_name>.",
        ),
        model_config_file: str = typer.Option(
            "", "--model_config_file", help="Text-format ModelServerConfig (see serving/models.config)."
        ),
        model_config_file_poll_wait_seconds: float = typer.Option(
            0.0, "--model_config_file_poll_wait_seconds", help="Re-read the config file this often (0: once)."
        ),
        host: str = typer.Option(
            "", "--host", help="Address to bind (default 127.0.0.1; 0.0.0.0 with --vertex); 0.0.0.0 exposes it."
        ),
        port: int = typer.Option(8500, "--port", help="gRPC port (0 picks a free one)."),
        rest_api_port: int = typer.Option(
            8501, "--rest_api_port", help="REST port (0 disables REST, as in TF Serving)."
        ),
        file_system_poll_wait_seconds: float = typer.Option(
            1.0, "--file_system_poll_wait_seconds", help="How often to look for new versions."
        ),
        rest_api_timeout_in_ms: int = typer.Option(
            30_000, "--rest_api_timeout_in_ms", help="Per-request REST timeout (504 after it)."
        ),
        enable_batching: bool = typer.Option(
            False, "--enable_batching", help="Merge concurrent requests into one model call."
        ),
        batching_parameters_file: str = typer.Option(
            "",
            "--batching_parameters_file",
            help="TF Serving batching parameters (see serving/batching.config); implies --enable_batching.",
        ),
        max_batch_size: int = typer.Option(
            128, "--max_batch_size", help="Batching: most rows per model call."
        ),
        batch_timeout_micros: int = typer.Option(
            0, "--batch_timeout_micros", help="Batching: longest wait for a batch to fill."
        ),
        num_batch_threads: int = typer.Option(
            0, "--num_batch_threads", help="Batching: threads running batches (0: --inference_threads)."
        ),
        inference_threads: int = typer.Option(
            0, "--inference_threads", help="Threads running model calls (0: min(4, CPUs))."
        ),
        max_queued_requests: int = typer.Option(
            128, "--max_queued_requests", help="Requests queued or running at once; more get 503 UNAVAILABLE."
        ),
        max_request_bytes: int = typer.Option(
            8 * MIB, "--max_request_bytes", help="Largest request body, after gzip decoding (413 above)."
        ),
        request_log_dir: str = typer.Option(
            "", "--request_log_dir", help="Log sampled requests here as TFRecord tf.Examples (off if empty)."
        ),
        request_log_sampling_rate: float = typer.Option(
            0.0, "--request_log_sampling_rate", help="Fraction of requests to log, 0..1."
        ),
        request_log_max_file_bytes: int = typer.Option(
            64 * MIB, "--request_log_max_file_bytes", help="Start a new log file beyond this size."
        ),
        tensorflow_intra_op_parallelism: int = typer.Option(
            0, "--tensorflow_intra_op_parallelism", help="TF intra-op threads (0: TF's default)."
        ),
        tensorflow_inter_op_parallelism: int = typer.Option(
            0, "--tensorflow_inter_op_parallelism", help="TF inter-op threads (0: TF's default)."
        ),
        grpc_socket_path: str = typer.Option(
            "", "--grpc_socket_path", help="Also serve gRPC on this unix socket (unix:<path> for clients)."
        ),
        grpc_channel_arguments: str = typer.Option(
            "",
            "--grpc_channel_arguments",
            help="gRPC server arguments: key=value[,...], e.g. grpc.max_receive_message_length=1048576.",
        ),
        monitoring_config_file: str = typer.Option(
            "",
            "--monitoring_config_file",
            help="Text-format MonitoringConfig (see serving/monitoring.config): the Prometheus path.",
        ),
        prefer_tflite_model: str = typer.Option(
            "", "--prefer_tflite_model", metavar="true|false", help="Out of scope: true stops start-up."
        ),
        num_tflite_pools: int | None = typer.Option(
            None, "--num_tflite_pools", help="Out of scope (TensorFlow Lite): stops start-up."
        ),
        num_tflite_interpreters_per_pool: int | None = typer.Option(
            None, "--num_tflite_interpreters_per_pool", help="Out of scope (TensorFlow Lite): stops start-up."
        ),
        enable_profiler: str = typer.Option(
            "", "--enable_profiler", metavar="true|false", help="Out of scope: true stops start-up."
        ),
        vertex: bool = typer.Option(
            False,
            "--vertex",
            help="Vertex AI's custom-container contract: port, routes and model from the AIP_* environment "
            "variables; REST only. --port and --rest_api_port are ignored.",
        ),
        verbose: bool = typer.Option(False, "--verbose", help="Debug logging."),
    ) -> None:
        """Serve pushed models over TF Serving's REST and gRPC APIs (like tensorflow_model_server)."""
        # The parameters mirror build_options; --vertex takes the ports from the environment.
        flags = {k: v for k, v in locals().items() if k not in ("verbose", "vertex", "host", "port", "rest_api_port")}
        _setup_logging(verbose)
        try:
            if vertex:
                options = vertex_options(os.environ, host=host or "0.0.0.0", **flags)
            else:
                options = build_options(host=host or "127.0.0.1", port=port, rest_api_port=rest_api_port, **flags)
            serve(options)
        except (ValueError, OSError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None

    @app.command("predict")
    def predict_command(
        file: Path = typer.Argument(..., help="CSV (with a header) or JSON (list of objects) of input rows."),  # noqa: B008
        url: str = typer.Option(
            "http://127.0.0.1:8501", "--url", help="http://host:port for REST, grpc://host:port for gRPC."
        ),
        model_name: str = typer.Option("taxi", "--model_name"),
        signature_name: str = typer.Option("", "--signature_name", help="Default: serving_default."),
        version: int | None = typer.Option(None, "--version", help="Query this version."),
        label: str | None = typer.Option(None, "--label", help="Query the version with this label."),
        limit: int | None = typer.Option(10, "--limit", help="Send at most this many rows."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the server."),
    ) -> None:
        """Send rows from a CSV or JSON file to a model server and print the predictions."""
        _setup_logging()
        from rich.console import Console
        from rich.table import Table

        from serving.client import ServingClientError

        try:
            rows, result = predict(file, url, model_name, signature_name, version, label, limit, timeout)
        except (ValueError, OSError, ServingClientError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        table = Table(title=f"{model_name} version {result.model_version or '?'} via {url}")
        table.add_column("row", justify="right")
        shown = list(rows[0])[:3] if rows else []  # a few inputs, to tell the rows apart
        for key in shown:
            table.add_column(key)
        table.add_column("prediction")
        for i, (row, pred) in enumerate(zip(rows, result.predictions, strict=True)):
            table.add_row(str(i), *[str(row[k]) for k in shown], _show(pred))
        Console().print(table)


def _show(prediction: Any) -> str:
    if isinstance(prediction, float):
        return f"{prediction:.4f}"
    return str(prediction)
