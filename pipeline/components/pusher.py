"""A Pusher that publishes a model version so no server loads it half written, and only when blessed.

The stock filesystem Pusher copies files straight into ``<base>/<version>``,
so a model server polling the base path can see a half-written version.

- On a local disk the model is copied into a hidden temporary directory next
  to it (which TF Serving ignores: not numeric), then renamed into place in
  one step.
- An object store (gs://, s3://) has no directory rename: TensorFlow's GCS
  filesystem "renames" a directory object by object, in listing order, which
  puts ``saved_model.pb`` before ``variables/``. So there the files are copied
  straight into ``<base>/<version>`` with ``saved_model.pb`` last. A loader
  (TF Serving's, or tfxp serve's) reads ``saved_model.pb`` first and fails
  without it, so it sees either no model (and retries) or a complete one.
  Each object appears whole, and GCS and S3 list what is written at once.
  docs/serving.md says how each server retries.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import tensorflow as tf
from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


class AtomicPushExecutor(pusher_executor.Executor):
    """Filesystem push with :func:`publish`: a rename locally, saved_model.pb last on object stores."""

    def Do(self, input_dict: dict[str, Any], output_dict: dict[str, Any], exec_properties: dict[str, Any]) -> None:
        if not input_dict.get(standard_component_specs.MODEL_BLESSING_KEY):
            raise ValueError("refusing to push: no model_blessing is wired into the Pusher")
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = tfx.proto.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise ValueError("AtomicPusher pushes to a filesystem destination only")
        model_path = self.GetModelPath(input_dict)
        serving_path, version = publish(model_path, destination.filesystem.base_directory)
        logging.info("Model pushed to serving path %s.", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))


def publish(model_path: str, base: str) -> tuple[str, int]:
    """Copy a SavedModel to a new ``<base>/<version>``, never seen half written; returns (path, version).

    Through tf.io.gfile, so every filesystem TensorFlow (and so TF Serving) reads works.
    """
    tf.io.gfile.makedirs(base)
    version = _free_version(base)
    serving_path = os.path.join(base, str(version))
    if "://" in base:  # an object store: no rename, so saved_model.pb goes last
        try:
            for src, dst in copy_order(model_path, serving_path):
                tf.io.gfile.makedirs(os.path.dirname(dst))
                tf.io.gfile.copy(src, dst, overwrite=True)
        except Exception:
            if tf.io.gfile.exists(serving_path):  # no saved_model.pb yet: no server has loaded it
                tf.io.gfile.rmtree(serving_path)
            raise
        return serving_path, version
    staging = os.path.join(base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        io_utils.copy_dir(model_path, staging)
        tf.io.gfile.rename(staging, serving_path)
    finally:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
    return serving_path, version


# What a SavedModel loader reads first and cannot load without (TF's loader takes either).
_LOADER_ENTRY = ("saved_model.pb", "saved_model.pbtxt")


def copy_order(src: str, dst: str) -> list[tuple[str, str]]:
    """(source, destination) of every file under ``src``, the SavedModel's ``saved_model.pb`` last."""
    src, dst = src.rstrip("/"), dst.rstrip("/")
    pairs = []
    for root, _dirs, files in tf.io.gfile.walk(src):
        out = dst + root[len(src) :]
        pairs += [(os.path.join(root, f), os.path.join(out, f)) for f in sorted(files)]
    return sorted(pairs, key=lambda pair: os.path.relpath(pair[0], src) in _LOADER_ENTRY)


def _free_version(base: str) -> int:
    """A unix-timestamp version, above every existing version in ``base``."""
    existing = [int(n.rstrip("/")) for n in tf.io.gfile.listdir(base) if n.rstrip("/").isdigit()]
    return max([int(time.time()), *(v + 1 for v in existing)])


class AtomicPusher(tfx.components.Pusher):
    """Pusher with :class:`AtomicPushExecutor`; requires a model blessing."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
