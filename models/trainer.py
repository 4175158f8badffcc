"""The Trainer's ``run_fn``: a thin adapter from TFX to the model code."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx

from models.data import input_fn
from models.features import from_custom_config
from models.model import HParams, build_model
from models.rule import best_rule, fit_rules, rule_candidates
from models.signatures import make_signatures

logger = logging.getLogger(__name__)

HPARAMS_KEY = "hparams"
RULE_FEATURE_KEY = "rule_feature"
# Written next to the model run's logs: which rule the Trainer chose, for review.
RULE_FILE = "rule.json"


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train on the train split and export a SavedModel with signatures."""
    custom_config = fn_args.custom_config or {}
    spec = from_custom_config(custom_config)
    label = spec.label.transformed_name
    hp = HParams.from_dict(custom_config.get(HPARAMS_KEY, {}))
    keras.utils.set_random_seed(hp.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

    def batches(files: list[str], batch_size: int = 256, seed: int | None = None, once: bool = False) -> tf.data.Dataset:
        return input_fn(files, fn_args.data_accessor, tf_transform_output, label, batch_size, seed, once)

    def numpy_pass(files: list[str]):  # noqa: ANN202 - a generator of numpy batches
        for features, labels in batches(files, 4096, once=True):
            yield {k: v.numpy() for k, v in features.items()}, labels.numpy()

    rules = fit_rules(spec, rule_candidates(spec, custom_config[RULE_FEATURE_KEY]), numpy_pass(fn_args.train_files))
    rule = best_rule(rules, numpy_pass(fn_args.eval_files))
    logger.info("rule on %s (eval AUC %.3f): positive rate per id %s", rule.feature, rule.eval_auc, rule.rates.round(3).tolist())
    model = build_model(hp, spec.model_inputs())
    history = model.fit(
        batches(fn_args.train_files, hp.batch_size, hp.seed),
        steps_per_epoch=fn_args.train_steps,
        validation_data=batches(fn_args.eval_files, hp.batch_size),
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )
    logger.info("training finished: %s", {k: v[-1] for k, v in history.history.items()})
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=make_signatures(model, tf_transform_output, rule, spec),
    )
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, RULE_FILE), "w") as f:
        json.dump({"feature": rule.feature, "eval_auc": rule.eval_auc, "candidates": [r.feature for r in rules]}, f)
