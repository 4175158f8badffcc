"""The Trainer's ``run_fn``: a thin adapter from TFX to the model code."""

from __future__ import annotations

import json
import logging
import os

import keras_tuner
import tensorflow as tf
import tf_keras as keras
from tfx import v1 as tfx

from models.autograph import skip_library_code
from models.data import fit_kwargs, fn_args_splits
from models.features import from_custom_config
from models.hparams import HPARAMS_KEY, HParams
from models.model import build_model
from models.rule import best_rule, fit_rules, rule_candidates
from models.signatures import make_signatures
from models.tuning import tuned
from models.warmup import first_examples, warmup_logs, write_warmup_requests

logger = logging.getLogger(__name__)

RULE_FEATURE_KEY = "rule_feature"
# Written next to the model run's logs, for review: which rule the Trainer
# chose, and the hyperparameters it trained with (the Tuner's best, when tuning).
RULE_FILE = "rule.json"
HPARAMS_FILE = "hparams.json"


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train on the train split and export a SavedModel with signatures."""
    skip_library_code()
    custom_config = fn_args.custom_config or {}
    spec = from_custom_config(custom_config)
    label = spec.label.transformed_name
    hp = HParams.model_validate(custom_config.get(HPARAMS_KEY, {}))
    if fn_args.hyperparameters:  # the Tuner's best trial
        hp = tuned(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters), hp)
        logger.info("hyperparameters of the Tuner's best trial: %s", hp)
    keras.utils.set_random_seed(hp.seed)
    tf_transform_output, train, evaluation = fn_args_splits(fn_args, label)
    logger.info("transformed %d train and %d eval rows", len(train), len(evaluation))

    rules = fit_rules(spec, rule_candidates(spec, custom_config[RULE_FEATURE_KEY]), train.batches())
    rule = best_rule(rules, evaluation.batches())
    logger.info(
        "rule on %s (eval AUC %.3f): positive rate per id %s", rule.feature, rule.eval_auc, rule.rates.round(3).tolist()
    )
    model = build_model(hp, spec.model_inputs())
    history = model.fit(
        **fit_kwargs(train, evaluation, hp.batch_size, hp.seed, fn_args.train_steps, fn_args.eval_steps)
    )
    logger.info("training finished: %s", {k: v[-1] for k, v in history.history.items()})
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=make_signatures(model, tf_transform_output, rule, spec),
    )
    # Inside the model directory, so every pushed or uploaded copy carries it (models/warmup.py).
    logs = warmup_logs(first_examples(fn_args.eval_files), spec)
    path = write_warmup_requests(fn_args.serving_model_dir, logs)
    logger.info("wrote %d warm-up requests to %s", len(logs), path)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, RULE_FILE), "w") as f:
        json.dump({"feature": rule.feature, "eval_auc": rule.eval_auc, "candidates": [r.feature for r in rules]}, f)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HPARAMS_FILE), "w") as f:
        json.dump(hp.model_dump(mode="json"), f)
