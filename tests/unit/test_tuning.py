"""The search space and the KerasTuner loop over the project's Keras 2 model (models/tuning.py)."""

import keras_tuner
import numpy as np

from models.data import Split, fit_kwargs
from models.features import ModelInput
from models.hparams import HParams
from models.tuning import OBJECTIVE, TrialTuner, tuned

BASE = HParams(hidden_units=(64, 32), dropout=0.5, l2=0.002, learning_rate=0.003, batch_size=64, seed=7)


def test_the_space_is_learning_rate_layer_sizes_and_dropout():
    space = keras_tuner.HyperParameters()
    tuned(space, BASE)
    configs = {h.name: h.get_config() for h in space.space}
    assert sorted(configs) == ["dropout", "learning_rate", "units_1", "units_2"]
    lr = configs["learning_rate"]
    assert (lr["min_value"], lr["max_value"], lr["sampling"]) == (3e-4, 3e-2, "log")
    assert configs["units_1"]["values"] == [32, 64, 128, 256]
    assert configs["units_2"]["values"] == [16, 32, 64]
    dropout = configs["dropout"]
    assert (dropout["min_value"], dropout["max_value"], dropout["step"]) == (0, 0.5, 0.1)


def test_the_best_trials_values_override_only_the_searched_fields():
    space = keras_tuner.HyperParameters()
    tuned(space, BASE)
    space.values.update({"learning_rate": 0.0123, "units_1": 128, "units_2": 16, "dropout": 0.2})
    # What the Trainer gets: the Tuner's best_hyperparameters, a HyperParameters config.
    best = keras_tuner.HyperParameters.from_config(space.get_config())
    expected = BASE.model_copy(update={"learning_rate": 0.0123, "hidden_units": (128, 16), "dropout": 0.2})
    assert tuned(best, BASE) == expected


def _split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, n)
    x = rng.normal(size=n).astype("float32")
    labels = ((ids == 2) | (x > 1.0)).astype("float32")
    return Split({"c": ids.astype("int64"), "x": x}, labels)


def test_a_search_trains_each_trial_and_scores_it_by_eval_auc(tmp_path):
    """KerasTuner 1.4 refuses tf_keras models in its own fit loop; TrialTuner trains them itself."""
    space = keras_tuner.HyperParameters()
    tuned(space, BASE)
    tuner = TrialTuner(
        BASE,
        [ModelInput("c", 3), ModelInput("x")],
        executions=1,
        oracle=keras_tuner.oracles.RandomSearchOracle(
            objective=keras_tuner.Objective(OBJECTIVE, "max"), max_trials=2, hyperparameters=space, seed=1
        ),
        directory=str(tmp_path),
        project_name="search",
    )
    tuner.search(**fit_kwargs(_split(512, 0), _split(256, 1), BASE.batch_size, BASE.seed, 20, 4))
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    assert 0.5 < trials[0].score <= 1.0  # an AUC, learned from the id feature
    assert trials[0].hyperparameters.values != trials[1].hyperparameters.values
