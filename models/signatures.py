"""The serving contract: three named signatures on the exported model.

- ``serving_default``: raw features as named tensors of shape [batch], so a
  TF Serving JSON request can carry plain values. A missing value is sent as
  NaN (numbers) or "" (strings), and treated like a missing CSV cell.
- ``serving_tf_example``: serialized ``tf.Example`` protos.
- ``transform_features``: serialized examples to transformed features, for TFMA.
- ``evaluation``: serialized examples to the model's probability and the
  simple rule's (``models/rule.py``), so TFMA grades both on the same rows.

Both serving signatures return ``{"probabilities": [batch]}``: the probability
of the positive class (for taxi, a big tip).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models.features import Dtype, FeatureSpec
from models.rule import RULE_OUTPUT, Rule

OUTPUT_KEY = "probabilities"
_TF_DTYPES = {Dtype.FLOAT: tf.float32, Dtype.INT: tf.int64, Dtype.STRING: tf.string}


def raw_input_specs(spec: FeatureSpec) -> dict[str, tf.TensorSpec]:
    """The ``serving_default`` inputs: one [batch] tensor per raw feature."""
    return {f.name: tf.TensorSpec([None], _TF_DTYPES[f.dtype], name=f.name) for f in spec.features}


def _present(values: tf.Tensor) -> tf.Tensor:
    if values.dtype == tf.string:
        return tf.not_equal(values, "")
    if values.dtype.is_floating:
        return tf.logical_not(tf.math.is_nan(values))
    return tf.ones_like(values, dtype=tf.bool)


def _to_raw(values: tf.Tensor, spec: Any) -> tf.Tensor | tf.SparseTensor:
    """A [batch] tensor in the representation the raw feature spec parses to."""
    values = tf.cast(values, spec.dtype)
    if isinstance(spec, tf.io.VarLenFeature):
        rows = tf.cast(tf.where(_present(values))[:, 0], tf.int64)
        return tf.SparseTensor(
            indices=tf.stack([rows, tf.zeros_like(rows)], axis=1),
            values=tf.gather(values, rows),
            dense_shape=tf.stack([tf.shape(values, out_type=tf.int64)[0], 1]),
        )
    return tf.reshape(values, [-1, *spec.shape])


def make_signatures(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, rule: Rule, spec: FeatureSpec
) -> dict[str, Callable[..., Any]]:
    """Attach the TFT layer to ``model`` and build its signatures."""
    # Attached as an attribute so its lookup tables are tracked and saved
    # with the model (tensorflow/transform#237).
    model.tft_layer = tf_transform_output.transform_features_layer()
    full_spec = tf_transform_output.raw_feature_spec()
    feature_spec = {f.name: full_spec[f.name] for f in spec.features}

    rates = tf.constant(rule.rates)

    def predict(raw: dict[str, Any], with_rule: bool = False) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw)
        inputs = {name: transformed[name] for name in model.input_names}
        out = {OUTPUT_KEY: tf.reshape(model(inputs), [-1])}
        if with_rule:
            ids = tf.clip_by_value(tf.reshape(transformed[rule.input_name], [-1]), 0, len(rule.rates) - 1)
            out[RULE_OUTPUT] = tf.gather(rates, ids)
        return out

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serving_tf_example(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(examples, feature_spec))

    @tf.function(input_signature=[raw_input_specs(spec)])
    def serving_default(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return predict({k: _to_raw(v, feature_spec[k]) for k, v in features.items()})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer(tf.io.parse_example(examples, full_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def evaluation(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(examples, feature_spec), with_rule=True)

    return {
        "evaluation": evaluation.get_concrete_function(),
        "serving_default": serving_default.get_concrete_function(),
        "serving_tf_example": serving_tf_example.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
    }
