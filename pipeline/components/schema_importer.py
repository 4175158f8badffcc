"""ImportSchemaGen whose cache key covers the schema file's content.

The stock ImportSchemaGen's only execution property is the file's path, so
editing ``schema/schema.pbtxt`` would reuse the cached, stale schema.
"""

from __future__ import annotations

import hashlib
import os

from tfx import types
from tfx.components.schema_gen.import_schema_gen import component as import_schema_gen
from tfx.dsl.components.base import base_component
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


class CuratedSchemaImporter(import_schema_gen.ImportSchemaGen):
    """Import the curated schema file; a content change invalidates the cache."""

    SPEC_CLASS = CuratedSchemaImporterSpec

    def __init__(self, schema_file: str, content_from: str | None = None):
        """``content_from``: a local copy of ``schema_file`` to fingerprint when that
        path exists only where the pipeline runs (inside the pipeline image)."""
        spec = CuratedSchemaImporterSpec(
            schema_file=schema_file,
            content_fingerprint=file_fingerprint(content_from or schema_file),
            schema=types.Channel(type=standard_artifacts.Schema),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
