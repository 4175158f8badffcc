"""A Pusher that publishes a model version atomically and only when blessed.

The stock filesystem Pusher copies files straight into ``<base>/<version>``,
so a model server polling the base path can see a half-written version. Here
the model is copied into a hidden temporary directory next to it (which TF
Serving ignores: not numeric), then renamed into place in one step.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


class AtomicPushExecutor(pusher_executor.Executor):
    """Filesystem push: temp directory, then rename into ``<base>/<version>``."""

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
        base = destination.filesystem.base_directory
        fileio.makedirs(base)
        version = _free_version(base)
        serving_path = os.path.join(base, str(version))
        staging = os.path.join(base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
        model_path = self.GetModelPath(input_dict)
        try:
            io_utils.copy_dir(model_path, staging)
            fileio.rename(staging, serving_path)
        finally:
            if fileio.exists(staging):
                fileio.rmtree(staging)
        logging.info("Model pushed to serving path %s.", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))


def _free_version(base: str) -> int:
    """A unix-timestamp version, above every existing version in ``base``."""
    existing = [int(n.rstrip("/")) for n in fileio.listdir(base) if n.rstrip("/").isdigit()]
    return max([int(time.time()), *(v + 1 for v in existing)])


class AtomicPusher(tfx.components.Pusher):
    """Pusher with :class:`AtomicPushExecutor`; requires a model blessing."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
