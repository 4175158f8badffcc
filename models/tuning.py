"""The hyperparameter search for TFX's Tuner: the search space and ``tuner_fn``.

Each trial is the Trainer's model (``build_model``) on the Trainer's data
(``models/data.py``), trained ``tuning.steps_per_trial`` steps and scored by
its AUC on the eval split; the test split stays the Evaluator's alone. The
Trainer builds its model from the best trial through :func:`tuned`, the one
place that names the searched fields.
"""

from __future__ import annotations

import keras_tuner
import numpy as np
import tf_keras as keras
from tfx import v1 as tfx

from models.autograph import skip_library_code
from models.data import fit_kwargs, fn_args_splits
from models.features import ModelInput, from_custom_config
from models.hparams import HPARAMS_KEY, HParams
from models.model import build_model

# The custom_config key of the search's bounds (tuning.max_trials, tuning.executions_per_trial).
TUNING_KEY = "tuning"
# Keras' name for the model's AUC on the validation (eval) split.
OBJECTIVE = "val_auc"


def tuned(hp: keras_tuner.HyperParameters, base: HParams) -> HParams:
    """``base`` with the searched fields taken from ``hp``: this is the search space.

    On an empty ``hp`` it declares the space; on a trial's or the best
    trial's values (``HyperParameters.from_config``) it returns those.
    """
    return base.model_copy(
        update={
            "learning_rate": hp.Float("learning_rate", 3e-4, 3e-2, sampling="log"),
            "hidden_units": (hp.Choice("units_1", [32, 64, 128, 256]), hp.Choice("units_2", [16, 32, 64])),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
        }
    )


class TrialTuner(keras_tuner.Tuner):
    """KerasTuner's search loop over the project's Keras 2 (``tf_keras``) model.

    KerasTuner 1.4 builds and fits only Keras 3 models itself, so each trial
    is trained here and reports its score.
    """

    def __init__(self, base: HParams, model_inputs: list[ModelInput], executions: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base = base
        self.model_inputs = model_inputs
        self.executions = executions

    def run_trial(self, trial: keras_tuner.engine.trial.Trial, *args, **kwargs) -> dict[str, float]:
        hp = tuned(trial.hyperparameters, self.base)
        scores = []
        for execution in range(self.executions):
            keras.utils.set_random_seed(hp.seed + execution)
            history = build_model(hp, self.model_inputs).fit(*args, **kwargs)
            scores.append(history.history[OBJECTIVE][-1])
        return {OBJECTIVE: float(np.mean(scores))}


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A random search over :func:`tuned`'s space, bounded by the config's tuning section."""
    skip_library_code()
    custom_config = fn_args.custom_config or {}
    spec = from_custom_config(custom_config)
    base = HParams.model_validate(custom_config.get(HPARAMS_KEY, {}))
    bounds = custom_config[TUNING_KEY]
    _, train, evaluation = fn_args_splits(fn_args, spec.label.transformed_name)
    space = keras_tuner.HyperParameters()
    tuned(space, base)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
        max_trials=bounds["max_trials"],
        hyperparameters=space,
        seed=base.seed,
    )
    tuner = TrialTuner(
        base,
        list(spec.model_inputs()),
        bounds["executions_per_trial"],
        oracle=oracle,
        directory=fn_args.working_dir,
        project_name="search",
        overwrite=True,
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs=fit_kwargs(
            train, evaluation, base.batch_size, base.seed, fn_args.train_steps, fn_args.eval_steps
        ),
    )
