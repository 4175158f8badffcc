"""Statistics of data outside a pipeline run, computed as the pipeline computes them.

CSV goes through the pipeline's own CSV-to-``tf.Example`` conversion
(CsvExampleGen's, with the missing-value tokens read as empty), so an empty
cell is a present feature with no value, exactly as in a run;
TFDV's ``generate_statistics_from_csv`` reads it as missing instead and would
report presence anomalies the pipeline never sees. TFRecord files of
``tf.Example`` (the server's request log) are read as they are, minus the
server's own ``output.*`` and ``serving.*`` annotations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.config import MISSING_VALUES
from pipeline.data_check import CSV_PATTERN, DataError, check_csv_dir

# Features the request log adds beside the model's inputs (serving/request_log.py).
SERVER_PREFIXES = ("output.", "serving.")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".gz")


def is_tfrecord(path: Path) -> bool:
    files = [path] if path.is_file() else sorted(path.iterdir()) if path.is_dir() else []
    return any(f.name.endswith(TFRECORD_SUFFIXES) for f in files)


def statistics(
    path: Path, required: tuple[str, ...] = (), missing_values: tuple[str, ...] = MISSING_VALUES
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of a CSV file, a directory of CSV files, or TFRecord ``tf.Example`` file(s).

    Raises DataError, naming the path, when it holds neither.
    """
    if not path.exists():
        raise DataError(
            f"{path} does not exist: give a CSV file, a directory of CSV files, or a TFRecord file"
        )
    if is_tfrecord(path):
        return _tfrecord_statistics(path)
    root, pattern = (path.parent, path.name) if path.is_file() else (path, CSV_PATTERN)
    check_csv_dir(str(root), required=required, pattern=pattern, missing_values=missing_values)
    return _csv_statistics(root, pattern, missing_values)


def _csv_statistics(
    root: Path, pattern: str, missing_values: tuple[str, ...]
) -> statistics_pb2.DatasetFeatureStatisticsList:
    import apache_beam as beam
    import tensorflow_data_validation as tfdv

    from pipeline.components.csv_example_gen import CsvToExample

    with tempfile.TemporaryDirectory(prefix="tfxp-stats-") as tmp:
        with beam.Pipeline() as p:
            _ = (
                p
                | "ToExamples" >> CsvToExample(f"{root}/{pattern}", missing_values)
                | "Serialize" >> beam.Map(lambda e: e.SerializeToString())
                | "Write" >> beam.io.WriteToTFRecord(f"{tmp}/examples", file_name_suffix=".tfrecord")
            )
        return tfdv.generate_statistics_from_tfrecord(data_location=f"{tmp}/examples*")


def _tfrecord_statistics(path: Path) -> statistics_pb2.DatasetFeatureStatisticsList:
    import tensorflow_data_validation as tfdv

    location = str(path) if path.is_file() else f"{path}/*"
    stats = tfdv.generate_statistics_from_tfrecord(data_location=location)
    for dataset in stats.datasets:
        keep = [f for f in dataset.features if not f.path.step or not f.path.step[0].startswith(SERVER_PREFIXES)]
        del dataset.features[:]
        dataset.features.extend(keep)
    return stats
