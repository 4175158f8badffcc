from models.features import FEATURES, LABEL, OOV_BUCKETS, Kind, feature, model_inputs, required_columns, slice_keys


def test_model_inputs_derive_from_the_feature_spec():
    inputs = {i.name: i.size for i in model_inputs()}
    assert inputs["fare_xf"] == 0  # z-scored value
    assert inputs["fare_bucket_xf"] == feature("fare").size  # and its quantile buckets
    assert inputs["payment_type_xf"] == feature("payment_type").size + OOV_BUCKETS
    assert inputs["trip_start_hour_xf"] == 24
    assert len(inputs) == len(FEATURES) + sum(1 for f in FEATURES if f.kind is Kind.NUMERIC and f.size)


def test_label_columns_are_required_and_slices_cover_the_tutorial_keys():
    assert {"tips", "fare"} <= set(required_columns())
    assert LABEL.name == "big_tipper" and LABEL.threshold == 0.2
    assert {"trip_start_hour", "payment_type"} <= set(slice_keys())
