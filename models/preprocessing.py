"""TFT ``preprocessing_fn``: raw taxi features to model inputs and the label."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from models.features import FEATURES, LABEL, OOV_BUCKETS, Feature, Kind


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
            x, top_k=f.size, num_oov_buckets=OOV_BUCKETS, vocab_filename=f.name
        )
        return {f.transformed_name: ids}
    raise ValueError(f"feature {f.name!r}: unsupported kind {f.kind}")


def preprocessing_fn(inputs: dict[str, tf.Tensor | tf.SparseTensor]) -> dict[str, tf.Tensor]:
    """Transform every feature of the spec and derive the label.

    At serving time the label's ``tips`` column is absent; the TFT layer then
    prunes the label output and computes the rest.
    """
    outputs: dict[str, tf.Tensor] = {}
    for f in FEATURES:
        outputs.update(_transform(f, fill_in_missing(inputs[f.name], f.missing_value)))
    tips = tf.cast(fill_in_missing(inputs[LABEL.tips_column], 0), tf.float32)
    fare = tf.cast(fill_in_missing(inputs[LABEL.fare_column], 0), tf.float32)
    # Values arrive as float32: a tip of exactly 20% (5.01 on 25.05) must not
    # round into "big tipper", so the margin must exceed a tenth of a cent.
    outputs[LABEL.transformed_name] = tf.cast(tips - LABEL.threshold * fare > 1e-3, tf.int64)
    return outputs
