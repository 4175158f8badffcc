"""ImportSchemaGen whose cache key covers the schema file's content.

The stock ImportSchemaGen's only execution property is the file's path, so
editing ``schema/schema.pbtxt`` would reuse the cached, stale schema. The
executor checks that the file it reads is the one fingerprinted when the
pipeline was built: on Vertex AI, an image built from another checkout.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from tfx import types
from tfx.components.schema_gen.import_schema_gen import component as import_schema_gen
from tfx.components.schema_gen.import_schema_gen import executor as import_schema_gen_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

CONTENT_FINGERPRINT_KEY = "content_fingerprint"


class CuratedSchemaImporterSpec(standard_component_specs.ImportSchemaGenSpec):
    PARAMETERS = {
        **standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
        CONTENT_FINGERPRINT_KEY: ExecutionParameter(type=str),
    }


def file_fingerprint(path: str) -> str:
    """SHA-256 of the file when it is local; otherwise the path itself.

    Remote URIs (gs://) are not read while building the pipeline: for those,
    only a new path changes the cache key.
    """
    if "://" in path or not os.path.isfile(path):
        return f"path:{path}"
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Executor(import_schema_gen_executor.Executor):
    """ImportSchemaGen's executor; refuses a file whose content is not the fingerprinted one."""

    def Do(
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        path = exec_properties[standard_component_specs.SCHEMA_FILE_KEY]
        expected = exec_properties.get(CONTENT_FINGERPRINT_KEY, "")
        if not expected.startswith("path:"):
            with fileio.open(path, "rb") as f:
                actual = hashlib.sha256(f.read()).hexdigest()
            if actual != expected:
                raise ValueError(
                    f"{path} is not the schema the pipeline was built with (sha256 {actual[:12]}, "
                    f"expected {expected[:12]}): rebuild and push the pipeline image "
                    "from the checkout you compiled"
                )
        super().Do(input_dict, output_dict, exec_properties)


class CuratedSchemaImporter(import_schema_gen.ImportSchemaGen):
    """Import the curated schema file; a content change invalidates the cache."""

    SPEC_CLASS = CuratedSchemaImporterSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, schema_file: str, content_from: str | None = None):
        """``content_from``: a local copy of ``schema_file`` to fingerprint when that
        path exists only where the pipeline runs (inside the pipeline image)."""
        spec = CuratedSchemaImporterSpec(
            schema_file=schema_file,
            content_fingerprint=file_fingerprint(content_from or schema_file),
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
