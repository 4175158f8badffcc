"""Model versions as TF Serving manages them: discover, load, warm up, swap, unload.

- Only numeric subdirectories of a model's base path are versions; hidden
  ``.tmp-*`` push directories and anything else are ignored.
- The version policy (latest N, all, specific) picks which versions to serve.
- Availability first: a new version is loaded and warmed up before any old one
  is unloaded, and requests see the switch atomically.
- A version that fails to load is never served; its status says why, and the
  versions already serving keep serving. It is retried only once its
  directory changes (e.g. the copy finished), so a broken push does not loop.
- Version labels map to versions that are AVAILABLE; a label pointing at an
  unavailable version is refused, as TF Serving does. The config's labels are
  kept as the goal, and applied as soon as every version they name is AVAILABLE
  (TF Serving would refuse to start; --allow_version_labels_for_unavailable_models
  is the closest flag).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from serving.config import ModelSpec
from serving.errors import Code, invalid, not_found
from serving.loading import LoadError, load_servable, warm_up
from serving.servable import Servable

logger = logging.getLogger(__name__)

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
_KEEP_ENDED = 10  # END entries kept in status per model

StateListener = Callable[[str, int, str], None]
# (model name, version, version path, warm-up requests replayed, seconds): after a version warmed up.
WarmupListener = Callable[[str, int, str, int, float], None]


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: Code | None = None  # None: OK
    error_message: str = ""
    fingerprint: tuple = ()  # of the directory when a load failed


class _Model:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        # Replaced wholesale (never mutated) so request threads read a consistent snapshot.
        self.servables: dict[int, Servable] = {}
        self.statuses: dict[int, VersionStatus] = {}
        self.labels: dict[str, int] = {}
        self.missing_base_path_logged = False


class ModelManager:
    """Owns every served model; polls their base paths on a background thread."""

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        poll_seconds: float = 1.0,
        on_state: StateListener | None = None,
        on_warmup: WarmupListener | None = None,
    ) -> None:
        self._models: dict[str, _Model] = {s.name: _Model(s) for s in specs}
        self._poll_seconds = poll_seconds
        self._on_state = on_state
        self._on_warmup = on_warmup
        self._poll_lock = threading.Lock()  # one poll/config change at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Load what is on disk now, then keep polling in the background."""
        self.poll()
        for model in self._models.values():
            self._apply_labels(model, dict(model.spec.labels))
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._poll_lock:
            for model in self._models.values():
                for version in sorted(model.servables):
                    self._unload(model, version)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the poller must outlive any one bad pass; the next retries
                logger.exception("polling model directories failed; retrying in %s s", self._poll_seconds)

    # -- polling -----------------------------------------------------------

    def poll(self) -> None:
        """One pass over every model's base path: load new versions, then unload retired ones."""
        with self._poll_lock:
            for model in list(self._models.values()):
                if self._stop.is_set():
                    return
                self._poll_model(model)
                wanted = dict(model.spec.labels)
                if wanted != model.labels and all(v in model.servables for v in wanted.values()):
                    self._apply_labels(model, wanted)  # the config's labels, now that they can apply

    def _poll_model(self, model: _Model) -> None:
        on_disk = self._scan(model)
        if on_disk is None:
            return
        aspired = self._aspired(model, on_disk)
        for version in sorted(aspired - set(model.servables), reverse=True):
            if self._stop.is_set():
                return
            self._load(model, version, on_disk[version])
        # Recompute: versions that just failed must not displace serving ones.
        aspired = self._aspired(model, on_disk)
        for version in sorted(set(model.servables) - aspired):
            self._unload(model, version)
        self._prune(model, on_disk)

    def _scan(self, model: _Model) -> dict[int, str] | None:
        """The version directories under the base path; None if it cannot be read (keep serving).

        A version is a directory whose name is ASCII digits (leading zeros allowed), as
        TF Serving parses them. A base path that disappears or cannot be listed unloads
        nothing, as in TF Serving: only an existing, empty base path retires every version.
        Read through tf.io.gfile, as TF Serving reads through TensorFlow's filesystems, so
        gs:// and any other registered scheme work as local paths do.
        """
        import tensorflow as tf

        base = model.spec.base_path
        try:
            # Object stores list "name/" for a directory; local listings do not.
            names = [n.rstrip("/") for n in tf.io.gfile.listdir(base)]
            found = {
                int(n): os.path.join(base, n)
                for n in names
                if n.isascii() and n.isdigit() and tf.io.gfile.isdir(os.path.join(base, n))
            }
            if not found and model.spec.root_as_version_1 and "saved_model.pb" in names:
                found = {1: base}  # Vertex AI's layout: the SavedModel itself, no version directories
        except tf.errors.OpError as exc:
            if not model.missing_base_path_logged:
                logger.warning(
                    "model %r: cannot list base path %s (%s); %s",
                    model.spec.name,
                    base,
                    exc.message.splitlines()[0] if exc.message else type(exc).__name__,
                    "keeping the loaded versions" if model.servables else "nothing to serve yet",
                )
                model.missing_base_path_logged = True
            return None
        model.missing_base_path_logged = False
        return found

    def _aspired(self, model: _Model, on_disk: dict[int, str]) -> set[int]:
        failed = {
            v
            for v, st in model.statuses.items()
            if st.error_code is not None and v in on_disk and st.fingerprint == _fingerprint(on_disk[v])
        }
        return model.spec.policy.select(set(on_disk) - failed)

    def _load(self, model: _Model, version: int, path: str) -> None:
        name = model.spec.name
        self._set_status(model, VersionStatus(version, LOADING))
        logger.info("model %r: loading version %d from %s", name, version, path)
        started = time.monotonic()
        try:
            servable = load_servable(name, version, path)
            warm_started = time.monotonic()
            warmed = warm_up(servable)
        except LoadError as exc:
            logger.error(
                "model %r: version %d failed to load and will not be served: %s", name, version, exc.message
            )
            self._set_status(model, VersionStatus(version, END, exc.code, exc.message, _fingerprint(path)))
            return
        if self._on_warmup is not None:
            self._on_warmup(name, version, path, warmed, time.monotonic() - warm_started)
        model.servables = {**model.servables, version: servable}
        self._set_status(model, VersionStatus(version, AVAILABLE))
        logger.info(
            "model %r: version %d AVAILABLE (%.1fs%s)",
            name,
            version,
            time.monotonic() - started,
            f", {warmed} warmup requests" if warmed else "",
        )

    def _unload(self, model: _Model, version: int) -> None:
        self._set_status(model, VersionStatus(version, UNLOADING))
        # In-flight requests hold their own reference; the version is freed when they finish.
        model.servables = {v: s for v, s in model.servables.items() if v != version}
        self._set_status(model, VersionStatus(version, END))
        logger.info("model %r: version %d unloaded", model.spec.name, version)

    def _set_status(self, model: _Model, status: VersionStatus) -> None:
        model.statuses = {**model.statuses, status.version: status}
        if self._on_state is not None:
            self._on_state(model.spec.name, status.version, status.state)

    def _prune(self, model: _Model, on_disk: dict[int, str]) -> None:
        ended = sorted(v for v, st in model.statuses.items() if st.state == END and v not in on_disk)
        drop = set(ended[:-_KEEP_ENDED]) if len(ended) > _KEEP_ENDED else set()
        if drop:
            model.statuses = {v: st for v, st in model.statuses.items() if v not in drop}

    # -- config and labels -------------------------------------------------

    def apply_config(self, specs: Iterable[ModelSpec]) -> list[str]:
        """Adopt a new model list (config reload). Returns the problems found (empty: all applied)."""
        specs = list(specs)
        problems: list[str] = []
        with self._poll_lock:
            old = self._models
            new: dict[str, _Model] = {}
            for spec in specs:
                model = old.get(spec.name)
                if model is None or model.spec.base_path != spec.base_path:
                    model = _Model(spec)
                else:
                    model.spec = spec
                new[spec.name] = model
                self._poll_model(model)
            self._models = new
            for name, model in old.items():
                if new.get(name) is not model:
                    for version in sorted(model.servables):
                        self._unload(model, version)
            for model in new.values():
                problems += self._apply_labels(model, dict(model.spec.labels))
        return problems

    def _apply_labels(self, model: _Model, labels: dict[str, int]) -> list[str]:
        bad = {label: v for label, v in labels.items() if v not in model.servables}
        if bad:
            problems = [
                f"model {model.spec.name!r}: label {label!r} -> version {v} refused: that version is not "
                f"AVAILABLE ({self._describe(model, v)}); the labels stay as they were until it is"
                for label, v in sorted(bad.items())
            ]
            for p in problems:
                logger.error("%s", p)
            return problems
        if labels != model.labels:
            logger.info("model %r: version labels %s", model.spec.name, labels or "{}")
        model.labels = labels
        return []

    def _describe(self, model: _Model, version: int) -> str:
        st = model.statuses.get(version)
        if st is None:
            return "not found under the base path or not selected by the version policy"
        return st.state + (f": {st.error_message}" if st.error_message else "")

    # -- lookups (request path) --------------------------------------------

    def model_names(self) -> list[str]:
        return sorted(self._models)

    def has_model(self, name: str) -> bool:
        return name in self._models

    def spec(self, name: str) -> ModelSpec:
        return self._model(name).spec

    def _model(self, name: str, request: str = "") -> _Model:
        model = self._models.get(name)
        if model is None:
            raise not_found(
                f"Servable not found for request: {request or name}: model {name!r} is not served here"
            )
        return model

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request addresses: a version, a label, or the latest available.

        Not-found messages start as TF Serving's do ("Servable not found for request:
        Latest(taxi)" or "Specific(taxi, 3)"), then say why.
        """
        request = (
            f"Latest({name})"
            if version is None and label is None
            else f"Specific({name}, {version if version is not None else label})"
        )
        model = self._model(name, request)
        servables = model.servables
        if label is not None:
            version = model.labels.get(label)
            if version is None:  # INVALID_ARGUMENT (400), as TF Serving's ServerCore answers
                known = ", ".join(f"{k}={v}" for k, v in sorted(model.labels.items())) or "none"
                raise invalid(
                    f"Unrecognized servable version label: {label} (model {name!r} has labels: {known})"
                )
        if version is not None:
            servable = servables.get(version)
            if servable is None:
                raise not_found(
                    f"Servable not found for request: Specific({name}, {version}): version {version} "
                    f"of model {name!r} is not available ({self._describe(model, version)}); "
                    f"available: {sorted(servables) or 'none'}"
                )
            return servable
        if not servables:
            raise not_found(
                f"Servable not found for request: {request}: model {name!r} has no available version yet"
            )
        return servables[max(servables)]

    def statuses(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """The versions' states, newest first: one version's, or all (TF Serving's GetModelStatus).

        As in TF Serving, a version label does not narrow the status, so there is no label here.
        """
        model = self._models.get(name)
        statuses = model.statuses if model is not None else {}
        if version is not None:
            if version not in statuses:
                raise not_found(f"Could not find version {version} of model {name}")
            return [statuses[version]]
        if not statuses:
            raise not_found(f"Could not find any versions of model {name}")
        return [statuses[v] for v in sorted(statuses, reverse=True)]

    def labels(self, name: str) -> dict[str, int]:
        return dict(self._model(name).labels)


def _fingerprint(path: str) -> tuple:
    """What changes when a version directory is (re)written: names, sizes, mtimes (through tf.io.gfile)."""
    import tensorflow as tf

    out = []
    for root, _dirs, files in tf.io.gfile.walk(path):
        for f in files:
            full = os.path.join(root, f)
            try:
                st = tf.io.gfile.stat(full)
            except tf.errors.NotFoundError:
                continue
            out.append((os.path.relpath(full, path), st.length, st.mtime_nsec))
    return tuple(sorted(out))
