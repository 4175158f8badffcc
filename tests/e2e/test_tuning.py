"""A small tuning run on the fixture data: TFX's Tuner, then the Trainer on its best trial, gated and pushed.

Two trials of 30 steps: enough for a search with a best trial, and the same
gates as any run decide on the Trainer's model. The Tuner's result is cached
like any component's, and a changed search bound runs it again.
"""

from __future__ import annotations

import json

import keras_tuner
import pytest
import tensorflow as tf

from models.hparams import HParams
from models.tuning import tuned
from pipeline.results import latest_run, only_json_in_dir
from pipeline.run import run_local
from tests.conftest import fast_config

pytestmark = pytest.mark.e2e

SEARCH = {"tuning.enabled": True, "tuning.max_trials": 2, "tuning.steps_per_trial": 30}


@pytest.fixture(scope="module")
def tuned_run(fixture_data_dir, tmp_path_factory):
    cfg = fast_config(fixture_data_dir, tmp_path_factory.mktemp("tuned_run"), **SEARCH)
    summary = run_local(cfg)
    assert summary.ok, f"tuning run failed: {summary.error} (log: {summary.log_file})"
    return cfg, summary


def _statuses(summary) -> dict[str, str]:
    return {c.node_id: c.status for c in summary.components}


def test_the_trainer_trains_the_best_trial_and_the_model_is_gated_and_pushed(tuned_run):
    cfg, summary = tuned_run
    assert _statuses(summary)["Tuner"] == "done"
    best = only_json_in_dir(summary.nodes["Tuner"].output_uri("best_hyperparameters"))["values"]
    # Both trials completed, each scored by its eval AUC; the best one is the Tuner's output.
    assert len(summary.trials) == 2
    assert summary.trials[0]["score"] >= summary.trials[1]["score"] > 0.5
    assert {k: v for k, v in summary.trials[0].items() if k not in ("trial_id", "score")} == best
    # The Trainer's recorded hyperparameters: the best trial's searched values, the config's others.
    best_hp = keras_tuner.HyperParameters.from_config({"space": [], "values": best})
    expected = tuned(best_hp, cfg.training.hparams)
    assert summary.hparams == expected.model_dump(mode="json")
    assert summary.hparams["learning_rate"] == best["learning_rate"] != cfg.training.learning_rate
    assert HParams.model_validate(summary.hparams).l2 == cfg.training.l2
    # The pushed model itself has the best trial's layer sizes.
    model = tf.saved_model.load(summary.pushed_path)
    kernels = [v.shape for v in model.trainable_variables if v.name.endswith("kernel:0")]
    assert [k[1] for k in kernels[:-1]] == [best["units_1"], best["units_2"]]
    # The same gates as any run: blessed on the test split, then pushed.
    assert summary.evaluation.blessed, summary.evaluation.failures
    assert summary.evaluation.overall.metrics["auc"] >= cfg.eval.floors["auc"]
    assert summary.pushed_path.startswith(cfg.model_base_path)


def test_mlflow_records_the_best_trials_hyperparameters(tuned_run, tmp_path):
    """The params of a tuned run are what the Trainer trained with, not the configured defaults."""
    import mlflow

    from tracking.export import export_run

    cfg, summary = tuned_run
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export_run(cfg, "latest", uri)
    mlflow.set_tracking_uri(uri)
    [row] = mlflow.search_runs(experiment_names=[cfg.name]).to_dict("records")
    assert float(row["params.hparams.learning_rate"]) == summary.hparams["learning_rate"] != cfg.training.learning_rate
    assert row["params.hparams.hidden_units"] == json.dumps(summary.hparams["hidden_units"])


def test_a_second_run_takes_the_tuners_result_from_the_cache(tuned_run):
    cfg, first = tuned_run
    summary = run_local(cfg)
    assert summary.ok, summary.error
    statuses = _statuses(summary)
    assert statuses["Tuner"] == statuses["Trainer"] == "cached"
    # Read back from MLMD: a cached execution whose output is the first run's artifact.
    tuner = latest_run(cfg.metadata_path, cfg.name)["Tuner"]
    assert tuner.state == "CACHED"
    assert tuner.outputs["best_hyperparameters"] == first.nodes["Tuner"].outputs["best_hyperparameters"]


def test_a_changed_search_runs_the_tuner_again(tuned_run, fixture_data_dir):
    cfg, first = tuned_run
    summary = run_local(fast_config(fixture_data_dir, cfg.output_dir, **{**SEARCH, "tuning.max_trials": 3}))
    assert summary.ok, summary.error
    statuses = _statuses(summary)
    assert statuses["Transform"] == "cached"
    assert statuses["Tuner"] == "done"
    assert len(summary.trials) == 3
    tuner = latest_run(cfg.metadata_path, cfg.name)["Tuner"]
    assert tuner.state == "COMPLETE"
    assert tuner.outputs["best_hyperparameters"] != first.nodes["Tuner"].outputs["best_hyperparameters"]
