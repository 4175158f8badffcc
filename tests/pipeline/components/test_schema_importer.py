"""CuratedSchemaImporter's executor: it imports only the schema the pipeline was built with."""

import pytest
from tfx.types import standard_artifacts

from pipeline.components.schema_importer import CuratedSchemaImporter, Executor

SCHEMA = 'feature { name: "fare" type: FLOAT }\n'


def _run(component, uri):
    schema = standard_artifacts.Schema()
    schema.uri = str(uri)
    Executor().Do({}, {"schema": [schema]}, component.exec_properties)


def test_the_fingerprinted_schema_is_imported(tmp_path):
    source = tmp_path / "schema.pbtxt"
    source.write_text(SCHEMA)
    (tmp_path / "out").mkdir()
    _run(CuratedSchemaImporter(str(source)), tmp_path / "out")
    assert (tmp_path / "out" / "schema.pbtxt").read_text() == SCHEMA


def test_a_schema_other_than_the_fingerprinted_one_is_refused(tmp_path):
    """As on Vertex AI: compiled against the checkout's copy, run with an image built from another."""
    checkout, image = tmp_path / "checkout.pbtxt", tmp_path / "image.pbtxt"
    checkout.write_text(SCHEMA)
    image.write_text('feature { name: "fare" type: INT }\n')
    component = CuratedSchemaImporter(str(image), content_from=str(checkout))
    (tmp_path / "out").mkdir()
    message = rf"^{image} is not the schema the pipeline was built with .*: rebuild and push"
    with pytest.raises(ValueError, match=message):
        _run(component, tmp_path / "out")
    assert not (tmp_path / "out" / "schema.pbtxt").exists()
