import pytest

from pipeline.data_check import DataError, check_csv_dir
from tests.conftest import DATA_CSV


def test_shipped_data_passes():
    report = check_csv_dir(str(DATA_CSV.parent))
    assert report.rows == 15002
    assert report.files == (str(DATA_CSV),)
    assert "tips" in report.columns


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong_column_count", r"wrong_column_count/data.csv line 43: 17 values but the header has 18 columns"),
        ("empty_dir", r"empty_dir has no CSV files"),
        ("no_csv", r"no_csv has no CSV files"),
        ("header_only", r"header_only/data.csv has a header but no data rows"),
        (
            "label_missing",
            r"label_missing/data.csv: column\(s\) 'tips' missing from the header \(the label 'big_tipper'",
        ),
    ],
)
def test_structural_problems_name_the_file_and_what_to_do(bad_data_dir, kind, message):
    with pytest.raises(DataError, match=message):
        check_csv_dir(str(bad_data_dir(kind)))


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(DataError, match=rf"data directory {tmp_path}/nope does not exist"):
        check_csv_dir(str(tmp_path / "nope"))


def test_type_errors_are_left_to_schema_validation(bad_data_dir):
    # A string in a numeric column is well-formed CSV: ExampleValidator and the
    # anomalies gate catch it (tests/e2e/test_bad_input.py).
    assert check_csv_dir(str(bad_data_dir("string_in_numeric"))).rows == 600


def test_the_partition_column_must_be_present_and_filled(tmp_path):
    from tests.conftest import read_rows, write_csv

    header, rows = read_rows()
    rows = rows[:50]
    rows[9][header.index("trip_start_timestamp")] = ""
    write_csv(tmp_path / "data.csv", header, rows)
    with pytest.raises(
        DataError,
        match=r"data.csv line 11: trip_start_timestamp is empty, but the train/eval/test "
        r"split hashes on it \(data.partition_feature\)",
    ):
        check_csv_dir(str(tmp_path), partition_column="trip_start_timestamp")
    assert check_csv_dir(str(tmp_path)).rows == 50  # hashing whole rows needs no such column
