"""The reference: the stock TFX taxi template from the installed wheel, every step enabled.

``tfx template copy --model=taxi`` writes the template into a directory of
the harness's (never committed). Its pipeline builds every component but
appends only ExampleGen; the tutorial's steps uncomment the rest, and
``enable_all_steps`` does exactly that. The template's Evaluator reports
accuracy only; AUC is added beside it so both pipelines' quality can be read
from their own TFMA output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

NAME = "bench_ref"
# Each commented-out "components.append(x)" of the template's pipeline.py (SchemaGen
# and ImportSchemaGen share one in an if/else).
APPENDS = re.compile(r"^(\s*)# (components\.append\(\w+\))$", re.MULTILINE)
ENABLED_STEPS = 9
ACCURACY_METRIC = "tfma.MetricsSpec(metrics=["
WITH_AUC = "tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name='AUC'), "


def copy_template(dest: Path) -> Path:
    """The template as ``tfx template copy`` writes it, into a new directory ``dest``."""
    tfx = Path(sys.executable).with_name("tfx")
    subprocess.run(
        [str(tfx), "template", "copy", "--model=taxi", f"--pipeline_name={NAME}", f"--destination_path={dest}"],
        check=True,
        capture_output=True,
    )
    return dest


def enable_all_steps(template: Path, data_csv: Path, train_steps: int | None = None) -> None:
    """Uncomment every step, add AUC to the Evaluator, and point it at ``data_csv``."""
    pipeline_py = template / "pipeline" / "pipeline.py"
    source = pipeline_py.read_text()
    source, enabled = APPENDS.subn(r"\1\2", source)
    if enabled != ENABLED_STEPS or ACCURACY_METRIC not in source:
        raise RuntimeError(
            f"the installed TFX template's pipeline.py has changed ({enabled} steps to enable, expected "
            f"{ENABLED_STEPS}); update bench/reference.py"
        )
    pipeline_py.write_text(source.replace(ACCURACY_METRIC, WITH_AUC, 1))
    if train_steps is not None:
        configs = template / "pipeline" / "configs.py"
        configs.write_text(
            re.sub(r"^TRAIN_NUM_STEPS = \d+$", f"TRAIN_NUM_STEPS = {train_steps}", configs.read_text(), flags=re.M)
        )
    shutil.copyfile(data_csv, template / "data" / "data.csv")


def prepare(dest: Path, data_csv: Path, train_steps: int | None = None) -> Path:
    enable_all_steps(copy_template(dest), data_csv, train_steps)
    return dest


def clean(template: Path) -> None:
    """Drop a previous run's outputs, so every run is cold (no cache, no baseline)."""
    for name in ("tfx_pipeline_output", "tfx_metadata"):
        shutil.rmtree(template / name, ignore_errors=True)


def command(template: Path) -> list[str]:
    return [sys.executable, str(template / "local_runner.py")]


def metadata_path(template: Path) -> Path:
    return template / "tfx_metadata" / NAME / "metadata.db"


def evaluation_dir(template: Path) -> Path:
    found = sorted((template / "tfx_pipeline_output" / NAME / "Evaluator" / "evaluation").glob("*"))
    if not found:
        raise RuntimeError(f"the reference run wrote no evaluation under {template}")
    return found[-1]
