"""TFT ``preprocessing_fn``: raw features to model inputs and the label, as the feature spec says."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from models.autograph import skip_library_code
from models.features import OOV_BUCKETS, Feature, Kind, Label, from_custom_config

# A value seen fewer times than this in the train split goes to the
# out-of-vocabulary bucket with the values never seen: the bucket then learns
# what an unfamiliar value means (the rare companies' rides), so a new or
# respelled value gets that, not the weights of a bucket no ride trained.
VOCAB_MIN_COUNT = 10


def fill_in_missing(x: tf.Tensor | tf.SparseTensor, default: float | int | str) -> tf.Tensor:
    """Densify an optional feature to shape [batch], filling missing with ``default``.

    Optional CSV columns arrive as SparseTensors of dense shape [batch, 1].
    """
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=tf.cast(default, x.dtype),
        )
    if x.shape.rank is not None and x.shape.rank > 1:
        x = tf.squeeze(x, axis=1)
    return x


def _transform(f: Feature, x: tf.Tensor) -> dict[str, tf.Tensor]:
    if f.kind is Kind.NUMERIC:
        value = tf.cast(x, tf.float32)
        if f.log:
            value = tf.math.log1p(tf.maximum(value, 0.0))
        out = {f.transformed_name: tft.scale_to_z_score(value)}
        if f.size:
            out[f.bucket_name] = tft.bucketize(value, f.size)
        return out
    if f.kind is Kind.BUCKETIZED:
        return {f.transformed_name: tft.bucketize(tf.cast(x, tf.float32), f.size)}
    if f.kind is Kind.CATEGORICAL_INT:
        return {f.transformed_name: tf.math.floormod(tf.cast(x, tf.int64), f.size)}
    if f.kind is Kind.VOCAB:
        ids = tft.compute_and_apply_vocabulary(
            x, top_k=f.size, frequency_threshold=VOCAB_MIN_COUNT, num_oov_buckets=OOV_BUCKETS, vocab_filename=f.name
        )
        return {f.transformed_name: ids}
    raise ValueError(f"feature {f.name!r}: unsupported kind {f.kind}")


def label_fn(label: Label, inputs: dict[str, tf.Tensor | tf.SparseTensor]) -> tf.Tensor:
    """The declared label as 0/1 int64 (see ``models.features.Label``).

    Numbers are compared in float64 with a relative tolerance: values arrive
    as float32, and a tip of exactly 20% (5.01 on 25.05) must not round into
    "big tipper". Rows whose label columns are missing never get here:
    ExampleGen leaves them out (``pipeline/components/csv_example_gen.py``).
    """
    x = fill_in_missing(inputs[label.column], "" if inputs[label.column].dtype == tf.string else 0)
    if isinstance(label.value, str):
        hit = tf.equal(x, label.value) if x.dtype == tf.string else tf.equal(tf.strings.as_string(x), label.value)
        return tf.cast(hit if label.op == "==" else tf.logical_not(hit), tf.int64)
    if x.dtype == tf.string:
        x = tf.strings.to_number(x, tf.float64)
    left = tf.cast(x, tf.float64)
    right = tf.constant(label.value, tf.float64)
    if label.times:
        right = right * tf.cast(fill_in_missing(inputs[label.times], 0), tf.float64)
    tolerance = 1e-5 * tf.maximum(tf.maximum(tf.abs(left), tf.abs(right)), 1.0)
    compare = {
        "==": lambda: tf.abs(left - right) <= tolerance,
        "!=": lambda: tf.abs(left - right) > tolerance,
        ">": lambda: left - right > tolerance,
        ">=": lambda: left - right >= -tolerance,
        "<": lambda: right - left > tolerance,
        "<=": lambda: right - left >= -tolerance,
    }[label.op]
    return tf.cast(compare(), tf.int64)


def preprocessing_fn(
    inputs: dict[str, tf.Tensor | tf.SparseTensor], custom_config: dict[str, Any] | None = None
) -> dict[str, tf.Tensor]:
    """Transform every feature of the spec (``custom_config``) and derive the label.

    At serving time the label's columns are absent; the TFT layer then prunes
    the label output and computes the rest.
    """
    skip_library_code()
    spec = from_custom_config(custom_config)
    outputs: dict[str, tf.Tensor] = {}
    for f in spec.features:
        outputs.update(_transform(f, fill_in_missing(inputs[f.name], f.missing_value)))
    outputs[spec.label.transformed_name] = label_fn(spec.label, inputs)
    return outputs
