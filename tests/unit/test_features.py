import pytest

from models.features import OOV_BUCKETS, Kind, Label, from_dict, load_spec


def test_model_inputs_derive_from_the_feature_spec():
    spec = load_spec()
    inputs = {i.name: i.size for i in spec.model_inputs()}
    assert inputs["fare_xf"] == 0  # z-scored value
    assert inputs["fare_bucket_xf"] == spec.feature("fare").size == 20  # and its quantile buckets
    assert inputs["payment_type_xf"] == spec.feature("payment_type").size + OOV_BUCKETS
    assert inputs["trip_start_hour_xf"] == 24
    assert len(inputs) == len(spec.features) + sum(1 for f in spec.features if f.kind is Kind.NUMERIC and f.size)


def test_the_taxi_label_and_slices_come_from_the_yaml_spec():
    spec = load_spec()
    assert spec.label.name == "big_tipper"
    assert (spec.label.column, spec.label.op, spec.label.value, spec.label.times) == ("tips", ">", 0.2, "fare")
    assert spec.label_only_columns == ("tips",)  # fare is a feature too; tips is absent when serving
    assert {"tips", "fare"} <= set(spec.required_columns())
    assert spec.slice_keys() == ("trip_start_hour", "payment_type", "company")
    assert from_dict(spec.to_dict()) == spec  # the JSON that reaches Transform and the Trainer round-trips


@pytest.mark.parametrize(
    ("expr", "parsed"),
    [
        ("churned", ("churned", "==", 1.0, "")),
        ("sex == male", ("sex", "==", "male", "")),
        ('plan != "basic plus"', ("plan", "!=", "basic plus", "")),
        ("age >= 50", ("age", ">=", 50.0, "")),
        ("tips > 0.2 * fare", ("tips", ">", 0.2, "fare")),
        ("x<-1.5e1", ("x", "<", -15.0, "")),
    ],
)
def test_label_expressions_parse_without_eval(expr, parsed):
    label = Label(expr)
    assert (label.column, label.op, label.value, label.times) == parsed


@pytest.mark.parametrize("expr", ["tips >", "tips + fare > 1", "__import__('os') == 1", "a > b", "x > 2 * 3"])
def test_a_label_that_does_not_parse_names_the_field_and_the_forms(expr):
    with pytest.raises(ValueError, match=r"label\.expr=.*does not parse: write COLUMN \(0/1\), COLUMN == VALUE"):
        Label(expr)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"features": {"fare": {"kind": "vocab", "dtype": "float", "size": 3}}}, "features.fare.dtype"),
        ({"features": {"fare": {"kind": "bucketized", "dtype": "float"}}}, "features.fare.size"),
        ({"features": {"fare": {"kind": "numeric", "dtype": "float", "buckets": 3}}}, "features.fare.buckets"),
        ({"features": {"fare": {"kind": "numbers", "dtype": "float"}}}, "features.fare.kind"),
        ({"features": {"tips": {"kind": "numeric", "dtype": "float"}}}, "features.tips"),
        ({"label": {"expr": "tips >"}}, "label.expr"),
        ({"label": {"name": "big tipper", "expr": "tips > 1"}}, "label.name"),
        ({"colour": 1}, "colour"),
    ],
)
def test_a_bad_spec_names_the_field(change, field):
    raw = {"features": {"fare": {"kind": "numeric", "dtype": "float"}}, "label": "tips > 0.2 * fare", **change}
    with pytest.raises(ValueError, match=rf"^my.yaml: feature spec field {field}="):
        from_dict(raw, source="my.yaml")


def test_the_shipped_spec_and_schema_agree_on_every_type_and_a_mismatch_is_named():
    import dataclasses

    from models.features import Dtype, FeatureSpec
    from pipeline.data_check import DataError, check_spec_schema
    from tests.conftest import REPO_ROOT

    schema = str(REPO_ROOT / "schema" / "schema.pbtxt")
    spec = load_spec()
    check_spec_schema(spec, schema)  # models/features.yaml against schema/schema.pbtxt
    fare = dataclasses.replace(spec.feature("fare"), dtype=Dtype.INT)
    bad = dataclasses.replace(spec, features=tuple(fare if f.name == "fare" else f for f in spec.features))
    assert isinstance(bad, FeatureSpec)
    with pytest.raises(
        DataError, match=r"features\.fare\.dtype=int disagrees with the schema .*schema\.pbtxt \(type FLOAT\)"
    ):
        check_spec_schema(bad, schema)
