"""The Trainer's in-memory batches (models/data.py) and the AutoGraph rule (models/autograph.py)."""

import numpy as np

from models.autograph import LIBRARIES, skip_library_code
from models.data import Split


def _split(n: int) -> Split:
    rows = np.arange(n)
    return Split({"row": rows.astype("int64"), "twice": (2 * rows).astype("float32")}, (rows % 2).astype("int64"))


def test_each_pass_is_a_new_permutation_of_every_row_with_features_and_label_aligned():
    split = _split(12)
    batches = list(split.dataset(batch_size=4, seed=7).take(6).as_numpy_iterator())
    passes = [np.concatenate([b[0]["row"] for b in batches[i : i + 3]]) for i in (0, 3)]
    for rows in passes:
        assert sorted(rows.tolist()) == list(range(12))  # every row once per pass
    assert passes[0].tolist() != passes[1].tolist()  # reshuffled
    assert passes[0].tolist() != list(range(12))  # shuffled at all
    for features, labels in batches:
        np.testing.assert_array_equal(features["twice"], 2 * features["row"])
        np.testing.assert_array_equal(labels, features["row"] % 2)


def test_without_a_seed_rows_come_in_order_and_repeat():
    rows = [b[0]["row"].tolist() for b in _split(6).dataset(batch_size=4).take(3).as_numpy_iterator()]
    assert rows == [[0, 1, 2, 3], [4, 5, 0, 1], [2, 3, 4, 5]]


def test_batches_cover_the_split_in_order():
    split = _split(10)
    got = list(split.batches(size=4))
    assert [len(labels) for _, labels in got] == [4, 4, 2]
    assert np.concatenate([f["row"] for f, _ in got]).tolist() == list(range(10))
    assert len(split) == 10


def test_autograph_leaves_keras_and_tft_alone_once_told():
    import tensorflow_transform as tft
    import tf_keras as keras
    from tensorflow.python.autograph.core import config
    from tensorflow.python.autograph.impl.conversion import is_allowlisted

    skip_library_code()
    skip_library_code()  # idempotent
    assert is_allowlisted(keras.layers.Dense.call)
    assert is_allowlisted(tft.scale_to_z_score)
    for name in LIBRARIES:
        assert sum(isinstance(r, config.DoNotConvert) and r.matches(name) for r in config.CONVERSION_RULES) == 1
