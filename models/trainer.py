"""The Trainer's ``run_fn``: a thin adapter from TFX to the model code."""

from __future__ import annotations

import logging

import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx

from models.data import input_fn
from models.model import HParams, build_model
from models.rule import fit_rule
from models.signatures import make_signatures

logger = logging.getLogger(__name__)

HPARAMS_KEY = "hparams"
RULE_FEATURE_KEY = "rule_feature"


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train on the transformed train split and export a SavedModel with signatures."""
    custom_config = fn_args.custom_config or {}
    hp = HParams.from_dict(custom_config.get(HPARAMS_KEY, {}))
    keras.utils.set_random_seed(hp.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, hp.batch_size, hp.seed)
    evaluation = input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, hp.batch_size)
    rule = fit_rule(
        custom_config[RULE_FEATURE_KEY],
        (
            ({k: v.numpy() for k, v in features.items()}, labels.numpy())
            for features, labels in input_fn(
                fn_args.train_files, fn_args.data_accessor, tf_transform_output, 4096, once=True
            )
        ),
    )
    logger.info("rule on %s: positive rate per id %s", rule.feature, rule.rates.round(3).tolist())
    model = build_model(hp)
    history = model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )
    logger.info("training finished: %s", {k: v[-1] for k, v in history.history.items()})
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=make_signatures(model, tf_transform_output, rule),
    )
