"""The input function: transformed TFRecords to batched (features, label)."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models.features import LABEL


def input_fn(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    seed: int | None = None,
    once: bool = False,
) -> tf.data.Dataset:
    """Batches of transformed features and the label: repeated forever, or one pass in order."""
    options = (
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=LABEL.transformed_name, num_epochs=1, shuffle=False
        )
        if once
        else tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=LABEL.transformed_name, shuffle_seed=seed
        )
    )
    dataset = data_accessor.tf_dataset_factory(
        file_pattern, options, tf_transform_output.transformed_metadata.schema
    )
    return dataset if once else dataset.repeat()
