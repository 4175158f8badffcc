"""The input function: raw TFRecords through the Transform graph to batched (features, label).

The Trainer reads raw examples (every span of its window) and applies the
Transform graph here, the same graph the serving signatures attach.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio



def input_fn(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    label_key: str,
    batch_size: int,
    seed: int | None = None,
    once: bool = False,
) -> tf.data.Dataset:
    """Batches of transformed features and the label: repeated forever, or one pass in order."""
    options = (
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1, shuffle=False)
        if once
        else tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle_seed=seed)
    )
    raw = data_accessor.tf_dataset_factory(file_pattern, options, tf_transform_output.raw_metadata.schema)
    layer = tf_transform_output.transform_features_layer()

    def transform(features: dict[str, Any]) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        transformed = layer(features)
        label = transformed.pop(label_key)
        return transformed, label

    dataset = raw.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset if once else dataset.repeat()
