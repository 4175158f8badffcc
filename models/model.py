"""The Keras model: a pure function of its hyperparameters.

The project uses Keras 2 (``tf_keras``) on purpose: TFT and TFMA 1.16 are
built on it, and the TFT layer attached to the model must be of the same kind.
"""

from __future__ import annotations

from collections.abc import Sequence

import tf_keras as keras

from models.features import ModelInput
from models.hparams import HParams


def build_model(hp: HParams, model_inputs: Sequence[ModelInput]) -> keras.Model:
    """A regularised MLP over one-hot categorical and z-scored dense inputs.

    Returns a model mapping transformed features (each of shape [batch]) to the
    probability of the positive class, of shape [batch, 1].
    """
    inputs: dict[str, keras.Input] = {}
    parts = []
    for spec in model_inputs:
        if spec.categorical:
            x = keras.Input(shape=(), name=spec.name, dtype="int64")
            parts.append(keras.layers.CategoryEncoding(spec.size, output_mode="one_hot")(x))
        else:
            x = keras.Input(shape=(), name=spec.name, dtype="float32")
            parts.append(keras.layers.Reshape((1,))(x))
        inputs[spec.name] = x
    h = keras.layers.concatenate(parts)
    for units in hp.hidden_units:
        h = keras.layers.Dense(
            units, activation="relu", kernel_regularizer=keras.regularizers.l2(hp.l2)
        )(h)
        h = keras.layers.Dropout(hp.dropout, seed=hp.seed)(h)
    output = keras.layers.Dense(1, activation="sigmoid", name="probability")(h)
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(), keras.metrics.AUC(name="auc")],
    )
    return model
