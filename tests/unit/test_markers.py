"""The e2e marker says what it selects: every test whose fixtures run a real TFX pipeline."""

import subprocess
import sys

from tests.conftest import REPO_ROOT


def _collected(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {line for line in done.stdout.splitlines() if "::" in line}


def test_tests_on_a_trained_model_or_a_pipeline_run_are_e2e_and_the_others_are_not() -> None:
    modules = ["tests/serving/test_rest.py", "tests/data/test_shipped_data.py", "tests/serving/test_rest_codec.py"]
    e2e = _collected("-m", "e2e", *modules)
    rest = _collected("-m", "not e2e", *modules)
    # A served request to the pipeline's pushed model, and schema inference on data/, run the pipeline.
    assert "tests/serving/test_rest.py::test_status_reports_the_available_version" in e2e
    assert "tests/data/test_shipped_data.py::test_schema_infer_writes_a_reviewable_proposal" in e2e
    # A codec test, or a check of the data file alone, runs none.
    assert "tests/data/test_shipped_data.py::test_the_accuracy_floor_is_above_the_majority_class_rate" in rest
    assert not any(t.startswith("tests/serving/test_rest_codec.py") for t in e2e)
    assert any(t.startswith("tests/serving/test_rest_codec.py") for t in rest)
    assert not e2e & rest
