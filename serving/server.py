"""Start and stop the model server: models, REST (uvicorn) and gRPC, in one process.

``start_server(options)`` loads what is on disk, then opens the ports (as TF
Serving does) and returns a ServerHandle; use it as a context manager so the
server always stops::

    with start_server(ServerOptions(models=single_model("taxi", base), port=0, rest_api_port=0)) as server:
        httpx.post(f"{server.rest_url}/v1/models/taxi:predict", json=...)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from serving.config import ServerOptions, load_model_config_file

logger = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 30


@dataclasses.dataclass
class ServerHandle:
    options: ServerOptions
    host: str
    grpc_port: int | None
    rest_port: int | None
    core: Any  # serving.service.ServingCore
    _grpc: Any
    _uvicorn: Any
    _threads: list[threading.Thread]
    _stop_config_watch: threading.Event
    _stopped: bool = False

    @property
    def manager(self) -> Any:
        return self.core.manager

    @property
    def rest_url(self) -> str:
        if self.rest_port is None:
            raise RuntimeError("REST is disabled on this server (rest_api_port=None)")
        return f"http://{_url_host(self.host)}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        if self.grpc_port is None:
            raise RuntimeError("gRPC is disabled on this server (port=None)")
        return f"{_url_host(self.host)}:{self.grpc_port}"

    @property
    def grpc_socket_target(self) -> str:
        """The gRPC target of --grpc_socket_path (``unix:<path>``), for grpc.insecure_channel."""
        if not self.options.grpc_socket_path:
            raise RuntimeError("gRPC listens on no unix socket here (grpc_socket_path is empty)")
        return f"unix:{self.options.grpc_socket_path}"

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop accepting requests, finish in-flight ones (up to the grace period), unload models."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_config_watch.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._grpc is not None:
            self._grpc.stop(grace_seconds).wait(grace_seconds + 1)
        for t in self._threads:
            t.join(timeout=grace_seconds + 5)
        self.core.close()
        self.core.manager.stop()
        logger.info("server stopped")

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def configure_tensorflow(options: ServerOptions) -> None:
    """Thread pools must be set before TensorFlow runs anything."""
    import tensorflow as tf

    try:
        if options.tensorflow_intra_op_parallelism:
            tf.config.threading.set_intra_op_parallelism_threads(options.tensorflow_intra_op_parallelism)
        if options.tensorflow_inter_op_parallelism:
            tf.config.threading.set_inter_op_parallelism_threads(options.tensorflow_inter_op_parallelism)
    except RuntimeError as exc:
        logger.warning("TensorFlow is already initialised; thread pool sizes unchanged: %s", exc)


def start_server(options: ServerOptions) -> ServerHandle:
    """Load the models, then start gRPC and REST. Raises OSError if a port cannot be bound."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_tensorflow(options)
    from serving.grpc_server import create_grpc_server
    from serving.metrics import Metrics
    from serving.models import ModelManager
    from serving.service import ServingCore

    specs = options.models or load_model_config_file(options.model_config_file)
    metrics = Metrics()
    manager = ModelManager(
        specs, options.file_system_poll_wait_seconds, on_state=metrics.on_state, on_warmup=metrics.on_warmup
    )
    manager.start()
    core = ServingCore(options, manager, metrics)
    grpc_server = uvicorn_server = None
    threads: list[threading.Thread] = []
    stop_watch = threading.Event()
    try:
        grpc_port: int | None = None
        rest_port: int | None = None
        if options.port is not None:
            grpc_server, grpc_port = create_grpc_server(core, options.host, options.port)
            grpc_server.start()
        if options.rest_api_port is not None:
            uvicorn_server, rest_port, thread = _start_rest(core, options.host, options.rest_api_port)
            threads.append(thread)
        if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
            threads.append(_watch_config(manager, options, stop_watch))
    except BaseException:
        stop_watch.set()
        if uvicorn_server is not None:
            uvicorn_server.should_exit = True
        if grpc_server is not None:
            grpc_server.stop(0)
        core.close()
        manager.stop()
        raise
    handle = ServerHandle(
        options, options.host, grpc_port, rest_port, core, grpc_server, uvicorn_server, threads, stop_watch
    )
    where = []
    if grpc_port is not None:
        socket_target = f" and {handle.grpc_socket_target}" if options.grpc_socket_path else ""
        where.append(f"gRPC on {handle.grpc_target}{socket_target}")
    if rest_port is not None:
        where.append(f"REST on {handle.rest_url}")
    logger.info("serving %s: %s", ", ".join(manager.model_names()), ", ".join(where))
    if rest_port is not None and options.prometheus_path is not None:
        logger.info("Prometheus metrics at %s%s", handle.rest_url, options.prometheus_path)
    return handle


def _start_rest(core: Any, host: str, port: int) -> tuple[Any, int, threading.Thread]:
    import uvicorn

    from serving.rest import create_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot bind REST to {host}:{port}: {exc.strerror}; choose another --rest_api_port"
        ) from exc
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(core),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,  # leave the process's logging alone
        log_level="warning",
        server_header=False,
        timeout_keep_alive=30,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rest", daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise OSError(f"the REST server did not start on {host}:{bound}")
        time.sleep(0.01)
    return server, bound, thread


def _watch_config(manager: Any, options: ServerOptions, stop: threading.Event) -> threading.Thread:
    """Re-read --model_config_file when it changes (labels, policies, models)."""
    path = Path(options.model_config_file)

    def stamp() -> tuple[int, int]:
        st = path.stat()
        return st.st_mtime_ns, st.st_size

    def run() -> None:
        try:
            last = stamp()
        except OSError:
            last = (0, 0)
        while not stop.wait(options.model_config_file_poll_wait_seconds):
            try:
                current = stamp()
                if current == last:
                    continue
                last = current
                specs = load_model_config_file(path)
            except (OSError, ValueError) as exc:
                logger.error("model config %s not reloaded, keeping the current one: %s", path, exc)
                continue
            problems = manager.apply_config(specs)
            if problems:
                logger.error("model config %s applied with problems: %s", path, "; ".join(problems))
            else:
                logger.info("model config %s reloaded", path)

    thread = threading.Thread(target=run, name="config-watch", daemon=True)
    thread.start()
    return thread
