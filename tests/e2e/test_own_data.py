"""A dataset that is not taxi, end to end, by configuration alone, as the README's "Use your own data" says.

The churn CSV (``tests/own_data.py``) is built here from scratch: other
column names, a yes/no label, ``NA``/``null`` for missing values and a few rows
without a label. ``tfxp init`` writes the profile and schema, ``tfxp run``
must bless and push, ``tfxp serve`` must answer a REST request with a
probability, and no file tracked in git may change.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.own_data import LABEL, ROWS_WITHOUT_LABEL, write_churn_csv

pytestmark = pytest.mark.e2e

TFXP = str(Path(sys.executable).parent / "tfxp")


def tfxp(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([TFXP, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=REPO_ROOT).stdout


@pytest.fixture(scope="module")
def churn(tmp_path_factory) -> dict:
    """The churn data, `tfxp init` on it, then `tfxp run`: what a new user does."""
    git_before = _git_status()
    data = tmp_path_factory.mktemp("churn_data")
    write_churn_csv(data)
    out = tmp_path_factory.mktemp("churn_run")
    profile = out / "churn.yaml"
    init = tfxp("init", "--data", str(data), "--label", LABEL, "--out", str(profile), "--name", "churn", timeout=300)
    run = tfxp("run", "--profile", str(profile), "--output", str(out / "outputs"))
    return {"data": data, "profile": profile, "init": init, "run": run, "out": out, "git_before": git_before}


def test_init_decides_each_column_and_writes_a_profile_that_loads(churn):
    init = churn["init"]
    assert init.returncode == 0, init.stdout + init.stderr
    lines = {
        line.split()[0]: line for line in init.stdout.splitlines() if line.startswith("  ") and len(line.split()) > 2
    }
    assert "ID-like: 6000 distinct values" in lines["customer_id"]
    assert "constant" in lines["currency"]
    assert "label" in lines["churned"]
    assert "categorical, 3 values (slice key)" in lines["plan"]
    assert "numeric" in lines["monthly_spend"]  # NA cells did not make it a string column
    assert f"{ROWS_WITHOUT_LABEL} rows have no label" in init.stdout
    raw = yaml.safe_load(churn["profile"].read_text())
    features = raw["features"]["features"]
    assert set(features) == {"plan", "region", "signup_channel", "tenure_months", "support_tickets", "monthly_spend"}
    assert features["monthly_spend"] == {"kind": "numeric", "dtype": "float"}
    assert raw["features"]["label"]["expr"] == LABEL
    assert raw["data"]["partition_feature"] == "customer_id"  # a stable split, on the ID
    assert raw["eval"]["floors"] == {} and raw["eval"]["rule_feature"] == "auto"
    schema = churn["profile"].with_name("churn.schema.pbtxt").read_text()
    churned = schema[schema.index('name: "churned"') :].split("feature {")[0]
    assert 'not_in_environment: "SERVING"' in churned
    # A second init refuses to overwrite.
    again = tfxp("init", "--data", str(churn["data"]), "--label", LABEL, "--out", str(churn["profile"]))
    assert again.returncode == 4 and "exists: choose another --out, or pass --force" in again.stdout


def test_the_run_blesses_pushes_and_counts_the_rows_without_a_label(churn):
    run = churn["run"]
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert f"Rows without a label: {ROWS_WITHOUT_LABEL}, left out of training and evaluation" in out
    assert "Anomalies: none" in out
    assert "Blessing: BLESSED" in out
    assert "Rule: the train split's positive rate per plan (chosen on the eval split)" in out
    assert out.rstrip().endswith("(exit 0: succeeded)")
    overall = next(line for line in out.splitlines() if line.startswith("Overall"))
    # 6000 rows less 12 unlabelled, 15% of them graded.
    rows = int(overall.split("(test split, ")[1].split(" rows")[0])
    assert 800 < rows < 1000
    auc, rule_auc = float(overall.split("AUC ")[1].split()[0]), float(overall.split("(rule ")[1].split(",")[0])
    assert auc > rule_auc + 0.01  # eval.min_lift_over_rule.auc


def test_the_pushed_model_is_served_under_its_own_name(churn):
    assert churn["run"].returncode == 0
    base = churn["out"] / "outputs" / "serving_model" / "churn"
    [version] = os.listdir(base)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    server = subprocess.Popen(
        [TFXP, "serve", "--model_base_path", str(base), "--port", str(ports[0]), "--rest_api_port", str(ports[1])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{ports[1]}/v1/models/churn"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    status = json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        assert status["model_version_status"][0]["version"] == version
        rows = [
            {
                "plan": "basic",
                "region": "south",
                "signup_channel": "partner",
                "tenure_months": 3,
                "support_tickets": 6,
                "monthly_spend": 150.0,
            },
            {
                "plan": "team",
                "region": "north",
                "signup_channel": "web",
                "tenure_months": 110,
                "support_tickets": 0,
                "monthly_spend": float("nan"),
            },  # a missing spend, as the client sends it
        ]
        body = json.dumps({"instances": rows}).encode()  # NaN as TF Serving's JSON accepts it
        request = urllib.request.Request(f"{url}:predict", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            predictions = json.load(r)["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(predictions) == 2 and all(0 < p < 1 for p in predictions)
    assert predictions[0] > 0.5 > predictions[1]  # a new basic customer with tickets churns; a loyal team one does not


def test_nothing_tracked_in_git_changed(churn):
    assert churn["run"].returncode == 0
    assert _git_status() == churn["git_before"]


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("churned =", "label.expr='churned =' is invalid: does not parse: write COLUMN (0/1), COLUMN == VALUE"),
        ("churn == yes", "label.expr='churn == yes' reads column 'churn', which is not in the header"),
        (
            "plan",
            "label.expr='plan' reads 'plan' as 0/1, but it has 3 values (basic, pro, team); "
            "name the positive value, e.g. label: plan == team",
        ),
        ("churned == maybe", "label.expr='churned == maybe': 'maybe' never appears in column 'churned'"),
        ("plan > 3", "label.expr='plan > 3' compares 'plan' with a number, but it holds text"),
    ],
)
def test_a_bad_label_is_one_line_naming_the_field(churn, tmp_path, label, message):
    result = tfxp(
        "init", "--data", str(churn["data"]), "--label", label, "--out", str(tmp_path / "p.yaml"), timeout=300
    )
    text = " ".join(result.stdout.split())
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in text
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_spec_that_disagrees_with_the_schema_is_refused_before_any_work(churn, tmp_path):
    raw = yaml.safe_load(churn["profile"].read_text())
    raw["features"]["features"]["tenure_months"]["dtype"] = "float"
    profile = tmp_path / "bad.yaml"
    profile.write_text(yaml.safe_dump(raw))
    result = tfxp("run", "--profile", str(profile), "--output", str(tmp_path / "out"))
    text = " ".join(result.stdout.split())
    assert result.returncode == 4, result.stdout + result.stderr
    assert (
        f"features.tenure_months.dtype=float disagrees with the schema {raw['data']['schema_file']} (type INT)" in text
    )
    assert not (tmp_path / "out" / "tfx_root").exists()
