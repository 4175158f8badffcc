"""preprocessing_fn on real rows, analysed and applied by TFT on the Beam DirectRunner."""

import math

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.public import tfxio

from models.features import SPEC_KEY, Dtype, load_spec
from models.preprocessing import preprocessing_fn as spec_preprocessing_fn
from tests.conftest import read_rows

_DTYPES = {Dtype.FLOAT: tf.float32, Dtype.INT: tf.int64, Dtype.STRING: tf.string}
SPEC = load_spec()  # the taxi spec, models/features.yaml
LABEL = SPEC.label
_COLUMNS = [f.name for f in SPEC.features] + list(SPEC.label_only_columns)


def preprocessing_fn(inputs):
    """As Transform calls it: the spec arrives in custom_config."""
    return spec_preprocessing_fn(inputs, {SPEC_KEY: SPEC.to_json()})


def _raw_spec():
    spec = {f.name: tf.io.VarLenFeature(_DTYPES[f.dtype]) for f in SPEC.features}
    spec["tips"] = tf.io.VarLenFeature(tf.float32)
    return spec


def _instances(n: int):
    header, rows = read_rows()
    out = []
    for row in rows[:n]:
        instance = {}
        for name in _COLUMNS:
            cell = row[header.index(name)]
            dtype = _raw_spec()[name].dtype
            if cell == "":
                instance[name] = []
            elif dtype == tf.string:
                instance[name] = [cell.encode()]
            elif dtype == tf.int64:
                instance[name] = [int(float(cell))]
            else:
                instance[name] = [float(cell)]
        out.append(instance)
    return out


def _example(instance) -> bytes:
    feature = {}
    spec = _raw_spec()
    for name, values in instance.items():
        if spec[name].dtype == tf.string:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif spec[name].dtype == tf.int64:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Analyse 200 real rows as tf.Examples with TFT on Beam, then apply the saved graph."""
    instances = _instances(200)
    tmp = tmp_path_factory.mktemp("tft")
    path = str(tmp / "examples.tfrecord")
    serialized = [_example(instance) for instance in instances]
    with tf.io.TFRecordWriter(path) as writer:
        for record in serialized:
            writer.write(record)
    source = tfxio.TFExampleRecord(
        file_pattern=path, schema=schema_utils.schema_from_feature_spec(_raw_spec())
    )
    transform_dir = str(tmp / "transform_fn")
    with beam.Pipeline() as p, tft_beam.Context(temp_dir=str(tmp / "tmp")):
        raw = p | source.BeamSource()
        transform_fn = (raw, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    output = tft.TFTransformOutput(transform_dir)
    batch = tf.io.parse_example(tf.constant(serialized), _raw_spec())
    columns = {k: v.numpy() for k, v in output.transform_raw_features(batch).items()}
    result = [{k: v[i].item() for k, v in columns.items()} for i in range(len(instances))]
    return instances, result


def test_label_is_tips_above_20_percent_of_fare(transformed):
    instances, result = transformed
    for raw, out in zip(instances, result, strict=True):
        tips, fare = raw["tips"][0], raw["fare"][0]
        assert out[LABEL.transformed_name] == int(tips > 0.2 * fare)
    assert 0 < np.mean([o[LABEL.transformed_name] for o in result]) < 1


def test_numeric_features_are_log_z_scored(transformed):
    instances, result = transformed
    logs = np.log1p(np.maximum([r["fare"][0] for r in instances], 0))
    expected = (logs - logs.mean()) / logs.std()
    got = np.array([o["fare_xf"] for o in result])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    buckets = np.array([o["fare_bucket_xf"] for o in result])
    assert buckets.min() >= 0 and buckets.max() < 20
    # Bucketisation is monotone in the fare.
    order = np.argsort(logs, kind="stable")
    assert np.all(np.diff(buckets[order]) >= 0)


def test_categoricals_and_vocabularies(transformed):
    instances, result = transformed
    for raw, out in zip(instances, result, strict=True):
        assert out["trip_start_hour_xf"] == raw["trip_start_hour"][0]
    payments = [r["payment_type"][0] for r in instances]
    most_common = max(set(payments), key=payments.count)
    ids = {r["payment_type"][0]: o["payment_type_xf"] for r, o in zip(instances, result, strict=True)}
    assert ids[most_common] == 0  # vocabularies are ordered by frequency
    assert len(set(ids.values())) == len(ids)


def test_missing_values_are_filled_not_dropped(transformed):
    instances, result = transformed
    assert len(result) == len(instances)
    missing = [o for r, o in zip(instances, result, strict=True) if not r["company"]]
    assert missing, "the first 200 rows include rides with no company"
    # Every missing company maps to the same id (the vocabulary entry for "").
    assert len({o["company_xf"] for o in missing}) == 1
    for o in result:
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in o.values())


@pytest.mark.parametrize(
    ("expr", "columns", "expected"),
    [
        # float32 as in tf.Example: exactly 20% (5.01 on 25.05) is not above 20%
        ("tips > 0.2 * fare", {"tips": [5.01, 5.02, 0.0], "fare": [25.05, 25.05, 3.0]}, [0, 1, 0]),
        ("sex == male", {"sex": [b"male", b"female", b"male"]}, [1, 0, 1]),
        ("plan != basic", {"plan": [b"basic", b"pro", b"team"]}, [0, 1, 1]),
        ("churned", {"churned": [1, 0, 1]}, [1, 0, 1]),
        ("age >= 50", {"age": [49, 50, 51]}, [0, 1, 1]),
        ("score < 0.5", {"score": [0.49, 0.5, 0.51]}, [1, 0, 0]),
    ],
)
def test_the_declared_label_is_computed_in_the_graph(expr, columns, expected):
    from models.features import Label
    from models.preprocessing import label_fn

    def tensor(values):
        if isinstance(values[0], bytes):
            return tf.constant(values)
        return tf.constant(values, tf.int64) if isinstance(values[0], int) else tf.constant(values, tf.float32)

    got = label_fn(Label(expr), {name: tensor(values) for name, values in columns.items()})
    assert got.numpy().tolist() == expected
