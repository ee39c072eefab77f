"""ProcessingConfig: exact outputs per step, train statistics on test data, fitting-only steps."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data.ingest import write_table
from engine.data.processing import apply_processing, apply_to_table, fit_processing, process_table
from engine.errors import InvalidArgument


def _fit_apply(train, config, test=None, **kwargs):
    fitted = fit_processing(train, config, **kwargs)
    return fitted, apply_processing(train if test is None else test, fitted)


def _structify(value):
    """What a protobuf Struct gives back: every number a float, key order not kept."""
    if isinstance(value, dict):
        return {k: _structify(value[k]) for k in sorted(value, reverse=True)}
    if isinstance(value, list):
        return [_structify(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _field_of(excinfo):
    return excinfo.value.violations[0].field


# ----- transformations


def test_transformations_give_exact_values_in_order():
    frame = pd.DataFrame({
        "id": [1, 2, 3], "a": [0.0, math.e - 1, None], "b": ["1", "2", "x"], "c": [-5.0, 0.5, 9.0],
        "d": [1.0, None, 7.0], "e": [0.5, 1.0, 2.5],
    })
    config = {"transformations": [
        {"type": "drop_columns", "columns": ["id"]},
        {"type": "rename", "parameters": {"mapping": {"a": "alpha"}}},
        {"type": "log", "columns": ["alpha"]},
        {"type": "clip", "columns": ["c"], "parameters": {"min": 0, "max": 1}},
        {"type": "fill_null", "columns": ["d"], "parameters": {"value": -1}},
        {"type": "bucketize", "columns": ["e"], "parameters": {"boundaries": [1, 2]}},
        {"type": "cast", "columns": ["d"], "parameters": {"to": "int64"}},
    ]}
    _, out = _fit_apply(frame, config)
    assert list(out.columns) == ["alpha", "b", "c", "d", "e"]
    assert out["alpha"].iloc[0] == 0.0 and out["alpha"].iloc[1] == pytest.approx(1.0) and pd.isna(out["alpha"].iloc[2])
    assert out["c"].tolist() == [0.0, 0.5, 1.0]
    assert out["d"].tolist() == [1, -1, 7] and out["d"].dtype == "int64"
    assert out["e"].tolist() == [0, 1, 2]  # x < 1 -> 0, 1 <= x < 2 -> 1, x >= 2 -> 2


def test_casts_convert_and_name_the_bad_row_and_column():
    frame = pd.DataFrame({
        "s": ["1.5", None, "3"], "flag": ["yes", "0", "TRUE"], "when": ["2024-01-02", "2024-02-03T04:05:06", None],
    })
    config = {"transformations": [
        {"type": "cast", "columns": ["s"], "parameters": {"to": "float64"}},
        {"type": "cast", "columns": ["flag"], "parameters": {"to": "bool"}},
        {"type": "cast", "columns": ["when"], "parameters": {"to": "timestamp"}},
    ]}
    fitted, out = _fit_apply(frame, config)
    assert out["s"].iloc[0] == 1.5 and pd.isna(out["s"].iloc[1]) and out["s"].iloc[2] == 3.0
    assert out["flag"].tolist() == [True, False, True]
    assert out["when"].iloc[1] == pd.Timestamp("2024-02-03 04:05:06") and pd.isna(out["when"].iloc[2])

    bad = pd.DataFrame({"s": ["2", "two"], "flag": ["no", "no"], "when": [None, None]})
    with pytest.raises(InvalidArgument) as excinfo:
        apply_processing(bad, fitted)
    assert _field_of(excinfo) == "processing.transformations[0].columns"
    assert "'two'" in excinfo.value.message and "row 1" in excinfo.value.message and "'s'" in excinfo.value.message


def test_cast_to_string_renders_values_like_the_schema():
    frame = pd.DataFrame({"i": [1, 2], "b": [True, False]})
    config = {"transformations": [{"type": "cast", "columns": ["i", "b"], "parameters": {"to": "string"}}]}
    _, out = _fit_apply(frame, config)
    assert out["i"].tolist() == ["1", "2"] and out["b"].tolist() == ["true", "false"]


def test_log_refuses_negative_values_on_any_data_with_row_and_column():
    fitted = fit_processing(pd.DataFrame({"x": [0.0, 1.0]}), {"transformations": [{"type": "log", "columns": ["x"]}]})
    with pytest.raises(InvalidArgument) as excinfo:
        apply_processing(pd.DataFrame({"x": [3.0, 1.0, -2.0]}), fitted)
    assert _field_of(excinfo) == "processing.transformations[0].columns"
    assert "row 2" in excinfo.value.message and "'x'" in excinfo.value.message and "clip" in excinfo.value.message


def test_drop_columns_ignores_columns_later_data_lacks_but_fitted_steps_need_theirs():
    config = {"transformations": [{"type": "drop_columns", "columns": ["id"]}], "normalization": {"method": "minmax"}}
    fitted = fit_processing(pd.DataFrame({"id": [1, 2], "x": [2.0, 4.0]}), config)
    assert apply_processing(pd.DataFrame({"x": [5.0]}), fitted)["x"].tolist() == [1.5]
    with pytest.raises(InvalidArgument) as excinfo:
        apply_processing(pd.DataFrame({"id": [3], "z": [5.0]}), fitted)
    assert _field_of(excinfo) == "processing.normalization.columns"
    assert "'x'" in excinfo.value.message and "fitted on" in excinfo.value.message


# ----- imputation


def test_imputation_uses_training_statistics_on_test_data():
    train = pd.DataFrame({"x": [1.0, None, 3.0, 8.0], "s": ["b", "a", None, "a"], "y": [0, 1, 0, 1]})
    test = pd.DataFrame({"x": [None, 5.0], "s": [None, "b"], "y": [1, 1]})
    base = {"feature_engineering": {"label_column": "y"}}

    _, out = _fit_apply(train, {**base, "imputation": {"strategy": "mean", "add_indicator": True}}, test)
    assert out["x"].tolist() == [4.0, 5.0] and out["x_missing"].tolist() == [1, 0]
    assert out["s"].isna().tolist() == [True, False]  # mean is numeric only

    _, out = _fit_apply(train, {**base, "imputation": {"strategy": "median"}}, test)
    assert out["x"].tolist() == [3.0, 5.0]

    _, out = _fit_apply(train, {**base, "imputation": {"strategy": "most_frequent"}}, test)
    assert out["s"].tolist() == ["a", "b"] and out["x"].tolist() == [1.0, 5.0]  # x: 1, 3, 8 tie -> smallest

    _, out = _fit_apply(train, {**base, "imputation": {"strategy": "constant", "fill_value": "?"}}, test)
    assert out["s"].tolist() == ["?", "b"] and pd.isna(out["x"].iloc[0])  # a string fills text columns

    _, out = _fit_apply(train, {**base, "imputation": {"strategy": "drop_rows", "columns": ["x"]}}, test)
    assert out["x"].tolist() == [5.0]


def test_bool_columns_with_nulls_are_bools_not_text():
    # Pandas keeps bools with nulls as object; they must still take bool fill values and encode as bools.
    train = pd.DataFrame({"flag": [True, None, True, False]})
    config = {"imputation": {"strategy": "most_frequent"}, "encoding": {"method": "onehot", "columns": ["flag"]}}
    fitted, out = _fit_apply(train, config)
    assert fitted["steps"][0]["values"] == [True]
    assert out["flag=true"].tolist() == [1, 1, 1, 0] and out["flag=false"].tolist() == [0, 0, 0, 1]


def test_imputation_errors_name_the_field():
    frame = pd.DataFrame({"x": [1.0, None], "s": ["a", None]})
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"imputation": {"strategy": "mean", "columns": ["s"]}})
    assert _field_of(excinfo) == "processing.imputation.columns" and "'s'" in excinfo.value.message
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"imputation": {"strategy": "constant"}})
    assert _field_of(excinfo) == "processing.imputation.fill_value"
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"imputation": {"strategy": "constant", "fill_value": "z", "columns": ["x"]}})
    assert _field_of(excinfo) == "processing.imputation.fill_value"


# ----- normalization


def test_standard_scaling_of_test_data_uses_train_mean_and_std():
    train = pd.DataFrame({"x": [0.0, 2.0], "y": [5.0, 7.0]})
    fitted, out = _fit_apply(train, {"normalization": {"method": "standard"}, "feature_engineering": {"label_column": "y"}},
                             pd.DataFrame({"x": [3.0, None], "y": [1.0, 2.0]}))
    assert out["x"].iloc[0] == 2.0 and pd.isna(out["x"].iloc[1])  # (3 - 1) / 1
    assert out["y"].tolist() == [1.0, 2.0]  # the label is never scaled
    assert fitted["steps"][0]["center"] == [1.0] and fitted["steps"][0]["scale"] == [1.0]


def test_minmax_and_robust_scaling_exact():
    _, out = _fit_apply(pd.DataFrame({"x": [2.0, 4.0, 6.0]}), {"normalization": {"method": "minmax"}}, pd.DataFrame({"x": [8.0, 2.0]}))
    assert out["x"].tolist() == [1.5, 0.0]
    _, out = _fit_apply(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0]}), {"normalization": {"method": "robust"}}, pd.DataFrame({"x": [5.0]}))
    assert out["x"].tolist() == [1.0]  # (5 - median 3) / IQR (4 - 2)
    _, out = _fit_apply(pd.DataFrame({"x": [3.0, 3.0]}), {"normalization": {"method": "standard"}}, pd.DataFrame({"x": [4.0]}))
    assert out["x"].tolist() == [1.0]  # a constant column keeps scale 1


def test_quantile_scaling_matches_scikit_learn_with_stored_quantiles():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(3)
    train = pd.DataFrame({"x": np.round(rng.exponential(2.0, 150), 1)})  # ties included
    test = pd.DataFrame({"x": [-1.0, 0.0, 0.7, 2.0, 5.5, 50.0]})
    fitted, out = _fit_apply(train, {"normalization": {"method": "quantile"}}, test)
    assert len(fitted["steps"][0]["quantiles"][0]) == 100
    expected = QuantileTransformer(n_quantiles=100).fit(train[["x"]].to_numpy()).transform(test[["x"]].to_numpy())[:, 0]
    np.testing.assert_allclose(out["x"].to_numpy(), expected, atol=1e-12)


def test_normalization_refuses_text_columns_and_unknown_methods():
    frame = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"normalization": {"method": "standard", "columns": ["s"]}})
    assert _field_of(excinfo) == "processing.normalization.columns" and "cast" in excinfo.value.message
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"normalization": {"method": "zscore"}})
    assert _field_of(excinfo) == "processing.normalization.method" and "standard" in excinfo.value.message


# ----- encoding


def test_onehot_and_ordinal_encoding_with_unseen_categories():
    train = pd.DataFrame({"c": ["b", "a", "b", None], "n": [1.0, 2.0, 3.0, 4.0]})
    test = pd.DataFrame({"c": ["a", "z", None], "n": [0.0, 0.0, 0.0]})

    fitted, out = _fit_apply(train, {"encoding": {"method": "onehot"}})
    assert list(out.columns) == ["n", "c=a", "c=b"]
    assert out["c=a"].tolist() == [0, 1, 0, 0] and out["c=b"].tolist() == [1, 0, 1, 0]
    with pytest.raises(InvalidArgument) as excinfo:
        apply_processing(test, fitted)  # handle_unknown defaults to error
    assert _field_of(excinfo) == "processing.encoding.handle_unknown"
    assert "'z'" in excinfo.value.message and "row 1" in excinfo.value.message

    _, out = _fit_apply(train, {"encoding": {"method": "onehot", "handle_unknown": "ignore"}}, test)
    assert out["c=a"].tolist() == [1, 0, 0] and out["c=b"].tolist() == [0, 0, 0]

    _, out = _fit_apply(train, {"encoding": {"method": "ordinal", "handle_unknown": "ignore"}}, test)
    assert list(out.columns) == ["c", "n"]
    assert out["c"].iloc[0] == 0 and pd.isna(out["c"].iloc[1]) and pd.isna(out["c"].iloc[2])


def test_target_encoding_is_out_of_fold_on_the_fitting_data():
    # Nine rows of "a" with label 0 and one "z" with label 1: in-sample encoding would give
    # "z" its own label; out of fold it only sees the other rows, whose labels are all 0.
    train = pd.DataFrame({"c": ["a"] * 9 + ["z"], "y": [0] * 9 + [1]})
    config = {"encoding": {"method": "target"}, "feature_engineering": {"label_column": "y"}}
    fitted = fit_processing(train, config, seed=7)
    fitting = apply_processing(train, fitted, fitting=True)
    assert fitting["c"].iloc[9] == 0.0
    assert fitting["y"].tolist() == train["y"].tolist()

    # Later data: full-data means smoothed towards the global mean 0.1 (m = 1); unseen -> 0.1.
    later = apply_processing(pd.DataFrame({"c": ["z", "a", "new", None]}), fitted)
    assert later["c"].tolist() == pytest.approx([(1 + 0.1) / 2, (0 + 0.1) / 10, 0.1, 0.1])


def test_target_encoding_needs_a_numeric_target_column():
    frame = pd.DataFrame({"c": ["a", "b"], "y": ["yes", "no"]})
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"encoding": {"method": "target"}})
    assert _field_of(excinfo) == "processing.encoding.target_column"
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"encoding": {"method": "target", "target_column": "y"}})
    assert _field_of(excinfo) == "processing.encoding.target_column" and "numeric" in excinfo.value.message
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"encoding": {"method": "target", "target_column": "nope"}})
    assert _field_of(excinfo) == "processing.encoding.target_column"


# ----- feature engineering


def test_date_parts_plain_and_cyclical():
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-03-15 13:00:00", None])})
    _, out = _fit_apply(frame, {"feature_engineering": {"date_part_columns": ["t"]}})
    assert list(out.columns) == ["t_year", "t_month", "t_day", "t_weekday", "t_hour"]
    assert out.iloc[0].tolist() == [2024, 3, 15, 4, 13]  # a Friday
    assert out.iloc[1].isna().all()

    _, out = _fit_apply(frame, {"feature_engineering": {"date_part_columns": ["t"], "cyclical_dates": True}})
    assert list(out.columns) == [
        "t_year", "t_month_sin", "t_month_cos", "t_day", "t_weekday_sin", "t_weekday_cos", "t_hour_sin", "t_hour_cos",
    ]
    row = out.iloc[0]
    assert row["t_month_sin"] == pytest.approx(math.sin(2 * math.pi * 2 / 12))
    assert row["t_weekday_cos"] == pytest.approx(math.cos(2 * math.pi * 4 / 7))
    assert row["t_hour_sin"] == pytest.approx(math.sin(2 * math.pi * 13 / 24))


def test_tfidf_matches_scikit_learn_and_reuses_the_training_vocabulary():
    from sklearn.feature_extraction.text import TfidfVectorizer

    train = pd.DataFrame({"text": ["the cat sat", "the dog ran far", "a cat and a dog"]})
    test = pd.DataFrame({"text": ["cat cat unicorn", None]})
    fitted, out = _fit_apply(train, {"feature_engineering": {"text_columns": ["text"]}}, test)
    vectorizer = TfidfVectorizer().fit(train["text"])
    terms = list(vectorizer.get_feature_names_out())
    assert fitted["steps"][0]["terms"] == terms
    assert list(out.columns) == [f"text_tfidf_{t}" for t in terms]
    np.testing.assert_allclose(out.to_numpy(), vectorizer.transform(["cat cat unicorn", ""]).toarray())
    assert out.loc[0, "text_tfidf_cat"] == pytest.approx(1.0)  # the only known word


def test_tfidf_keeps_at_most_200_terms():
    words = [f"w{i:03d}" for i in range(300)]
    frame = pd.DataFrame({"text": [" ".join(words[i:i + 50]) for i in range(0, 300, 10)]})
    fitted = fit_processing(frame, {"feature_engineering": {"text_columns": ["text"]}})
    assert len(fitted["steps"][0]["terms"]) == 200


def test_ratios_and_polynomial_features():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 0.0, None]})
    _, out = _fit_apply(frame, {"feature_engineering": {"ratios": ["a/b"]}})
    assert out["a_div_b"].iloc[0] == 0.5 and out["a_div_b"].iloc[1:].isna().all()  # x / 0 -> null

    _, out = _fit_apply(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), {"feature_engineering": {"polynomial_degree": 2}})
    assert list(out.columns) == ["a", "b", "a^2", "a*b", "b^2"]
    assert out.iloc[1].tolist() == [2.0, 4.0, 4.0, 8.0, 16.0]
    _, out = _fit_apply(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), {"feature_engineering": {"interactions": True}})
    assert list(out.columns) == ["a", "b", "a*b"] and out["a*b"].tolist() == [3.0, 8.0]


def test_a_huge_polynomial_degree_is_refused_before_any_term_is_listed():
    # Listing the terms of degree 2**31 - 1 first took all the machine's memory (found by tests/fuzz).
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(pd.DataFrame({"a": [1.0], "b": [2.0]}), {"feature_engineering": {"polynomial_degree": 2**31 - 1}})
    assert _field_of(excinfo) == "processing.feature_engineering.polynomial_degree"
    assert "would create 2305843010287435773 columns" in excinfo.value.message


def test_ratio_of_unknown_column_names_the_field():
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(pd.DataFrame({"a": [1.0]}), {"feature_engineering": {"ratios": ["a/zz"]}})
    assert _field_of(excinfo) == "processing.feature_engineering.ratios"


# ----- selection and PCA


def test_variance_and_correlation_selection():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "const": [5.0] * 4, "b": [2.0, 4.0, 6.0, 8.0], "c": [1.0, -1.0, -1.0, 1.0]})
    _, out = _fit_apply(frame, {"feature_engineering": {"variance_threshold": 0.01}})
    assert list(out.columns) == ["a", "b", "c"]
    _, out = _fit_apply(frame, {"feature_engineering": {"correlation_threshold": 0.9}})
    assert list(out.columns) == ["a", "const", "c"]  # b = 2a goes; the later of the pair


def test_select_k_best_keeps_the_informative_feature():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=80)
    frame = pd.DataFrame({"noise1": rng.normal(size=80), "signal": signal, "noise2": rng.normal(size=80), "y": (signal > 0).astype(int)})
    fitted, out = _fit_apply(frame, {"feature_engineering": {"select_k_best": 1, "label_column": "y"}})
    assert list(out.columns) == ["signal", "y"]
    assert fitted["steps"][0]["task"] == "classification"
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"feature_engineering": {"select_k_best": 1}})
    assert _field_of(excinfo) == "processing.feature_engineering.select_k_best"


def test_pca_replaces_numeric_features_with_stored_components():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"]).assign(name="n", y=1)
    test = pd.DataFrame(rng.normal(size=(4, 3)), columns=["a", "b", "c"]).assign(name="m", y=0)
    fitted, out = _fit_apply(train, {"feature_engineering": {"pca_components": 2, "label_column": "y"}}, test)
    assert list(out.columns) == ["name", "y", "pc1", "pc2"]
    expected = PCA(n_components=2, svd_solver="full").fit(train[["a", "b", "c"]]).transform(test[["a", "b", "c"]])
    np.testing.assert_allclose(out[["pc1", "pc2"]].to_numpy(), expected, atol=1e-10)
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(train, {"feature_engineering": {"pca_components": 4, "label_column": "y"}})
    assert _field_of(excinfo) == "processing.feature_engineering.pca_components"


# ----- sampling and augmentation (fitting data only)


def _labelled(zeros, ones):
    return pd.DataFrame({"x": np.arange(zeros + ones, dtype=float), "y": [0] * zeros + [1] * ones})


@pytest.mark.parametrize(
    ("sampling", "classes", "rows", "zeros", "ones"),
    [
        ({"method": "random", "fraction": 0.5}, (6, 4), 5, None, None),
        ({"method": "stratified", "fraction": 0.5}, (6, 4), 5, 3, 2),
        ({"method": "systematic", "fraction": 0.2}, (6, 4), 2, None, None),
        ({"method": "oversample"}, (6, 2), 12, 6, 6),
        ({"method": "undersample"}, (6, 4), 8, 4, 4),
    ],
)
def test_sampling_sizes_and_balance(sampling, classes, rows, zeros, ones):
    frame = _labelled(*classes)
    fitted = fit_processing(frame, {"sampling": sampling, "feature_engineering": {"label_column": "y"}}, seed=5)
    out = apply_processing(frame, fitted, fitting=True)
    assert len(out) == rows
    if zeros is not None:
        assert (out["y"] == 0).sum() == zeros and (out["y"] == 1).sum() == ones
    assert set(out["x"]) <= set(frame["x"])  # rows are the data's own, never invented
    if sampling["method"] == "oversample":
        assert set(out["x"]) == set(frame["x"])  # every original row stays
    if sampling["method"] == "systematic":
        assert abs(out["x"].iloc[1] - out["x"].iloc[0]) == 5  # every 5th row
    assert apply_processing(frame, fitted).equals(frame)  # never on non-fitting data


def test_augmentation_flips_an_image_row_only_when_fitting():
    # One 2x3 image, pixels row-major: [[1, 2, 3], [4, 5, 6]].
    frame = pd.DataFrame([[1, 2, 3, 4, 5, 6, 9]], columns=[f"p{i}" for i in range(6)] + ["label"])
    config = {
        "feature_engineering": {"label_column": "label"},
        "augmentation": {"enabled": True, "methods": ["flip"], "parameters": {"image_shape": [2, 3]}, "probability": 1},
    }
    fitted = fit_processing(frame, config)
    out = apply_processing(frame, fitted, fitting=True)
    assert out.values.tolist() == [[1, 2, 3, 4, 5, 6, 9], [3, 2, 1, 6, 5, 4, 9]]
    assert apply_processing(frame, fitted).values.tolist() == [[1, 2, 3, 4, 5, 6, 9]]

    config["augmentation"]["parameters"]["flip"] = "vertical"
    config["augmentation"]["copies"] = 2
    out = apply_processing(frame, fit_processing(frame, config), fitting=True)
    assert out.values.tolist()[1:] == [[4, 5, 6, 1, 2, 3, 9]] * 2


def test_augmentation_shift_moves_pixels_within_max_shift():
    image = np.arange(1, 10).reshape(3, 3)
    frame = pd.DataFrame([image.ravel()], columns=[f"p{i}" for i in range(9)])
    config = {"augmentation": {
        "enabled": True, "methods": ["shift"], "parameters": {"image_shape": [3, 3]}, "probability": 1, "copies": 20,
    }}
    out = apply_processing(frame, fit_processing(frame, config, seed=2), fitting=True)
    allowed = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.zeros_like(image)
            source = image[max(0, -dy):3 - max(0, dy), max(0, -dx):3 - max(0, dx)]
            shifted[max(0, dy):3 + min(0, dy), max(0, dx):3 + min(0, dx)] = source
            allowed.append(shifted.ravel().tolist())
    copies = out.values.tolist()[1:]
    assert len(copies) == 20 and all(c in allowed for c in copies)
    assert len({tuple(c) for c in copies}) > 1  # offsets really vary


def test_image_augmentation_needs_image_shape():
    frame = pd.DataFrame({"p0": [1.0], "p1": [2.0]})
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"augmentation": {"enabled": True, "methods": ["noise"]}})
    assert _field_of(excinfo) == "processing.augmentation.parameters.image_shape" and "[height, width]" in excinfo.value.message
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"augmentation": {"enabled": True, "methods": ["flip"], "parameters": {"image_shape": [2, 2]}}})
    assert _field_of(excinfo) == "processing.augmentation.parameters.image_shape" and "4 pixels" in excinfo.value.message


def test_tabular_noise_perturbs_copies_by_column_std():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(0, 10, 40), "b": rng.normal(0, 0.1, 40), "y": [0, 1] * 20})
    config = {"feature_engineering": {"label_column": "y"},
              "augmentation": {"enabled": True, "methods": ["tabular_noise"], "parameters": {"noise_std": 0.1}, "probability": 1}}
    fitted = fit_processing(frame, config)
    out = apply_processing(frame, fitted, fitting=True)
    assert len(out) == 80
    pd.testing.assert_frame_equal(out.iloc[:40], frame)
    copies, originals = out.iloc[40:].reset_index(drop=True), frame
    assert copies["y"].tolist() == originals["y"].tolist()
    for column in ("a", "b"):
        diff = (copies[column] - originals[column]).abs()
        assert (diff > 0).all() and diff.max() < 6 * 0.1 * originals[column].std(ddof=0)


# ----- the fitted dict


def _full_config():
    return {
        "transformations": [{"type": "clip", "columns": ["n"], "parameters": {"min": -5, "max": 50}}],
        "imputation": {"strategy": "median", "add_indicator": True},
        "feature_engineering": {"label_column": "y", "date_part_columns": ["t"], "cyclical_dates": True,
                                "text_columns": ["txt"], "ratios": ["n/m"], "interactions": True},
        "encoding": {"method": "target", "columns": ["c", "code"]},
        "normalization": {"method": "quantile"},
        "sampling": {"method": "oversample"},
        "augmentation": {"enabled": True, "methods": ["tabular_noise"], "copies": "2"},
    }


def _frames():
    rng = np.random.default_rng(11)

    def make(n):
        return pd.DataFrame({
            "n": np.where(rng.random(n) < 0.2, np.nan, rng.normal(5, 10, n)),
            "m": rng.integers(0, 4, n).astype(float),
            "c": rng.choice(["red", "green", "blue"], n),
            "code": rng.integers(1, 4, n),
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10_000, n), unit="h"),
            "txt": rng.choice(["good movie", "bad plot", "great cast and plot"], n),
            "y": rng.integers(0, 2, n),
        })

    return make(40), make(10)


def test_fitted_round_trips_through_json_and_struct_and_applies_identically():
    train, test = _frames()
    fitted = fit_processing(train, _full_config(), seed=3)
    text = json.dumps(fitted, allow_nan=False)  # plain JSON: no NaN, no numpy types
    for copy in (json.loads(text), _structify(json.loads(text))):
        pd.testing.assert_frame_equal(apply_processing(test, copy), apply_processing(test, fitted))
        pd.testing.assert_frame_equal(apply_processing(train, copy, fitting=True), apply_processing(train, fitted, fitting=True))
    out = apply_processing(test, fitted)
    assert list(out.columns) == fitted["output_columns"] and len(out) == len(test)
    assert out["y"].tolist() == test["y"].tolist()
    assert len(apply_processing(train, fitted, fitting=True)) > len(train)


def test_config_errors_have_precise_field_paths():
    frame = pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"], "y": [0, 1]})
    cases = [
        ({"normalisation": {}}, "processing.normalisation"),
        ({"transformations": [{"type": "log", "columns": ["a"]}, {"type": "clip", "columns": ["a"], "parameters": {"min": 0}},
                              {"type": "log", "columns": ["nope"]}]}, "processing.transformations[2].columns"),
        ({"transformations": [{"type": "explode", "columns": ["a"]}]}, "processing.transformations[0].type"),
        ({"transformations": [{"type": "cast", "columns": ["a"], "parameters": {"to": "float32"}}]}, "processing.transformations[0].parameters.to"),
        ({"transformations": [{"type": "clip", "columns": ["a"], "parameters": {"min": 3, "max": 1}}]}, "processing.transformations[0].parameters.min"),
        ({"transformations": [{"type": "rename", "parameters": {"mapping": {"a": "s"}}}]}, "processing.transformations[0].parameters.mapping"),
        ({"transformations": [{"type": "log", "columns": ["y"]}], "feature_engineering": {"label_column": "y"}}, "processing.transformations[0].columns"),
        ({"normalization": {"method": "standard", "columns": ["y"]}, "feature_engineering": {"label_column": "y"}}, "processing.normalization.columns"),
        ({"encoding": {"method": "onehot", "handle_unknown": "skip"}}, "processing.encoding.handle_unknown"),
        ({"feature_engineering": {"label_column": "label"}}, "processing.feature_engineering.label_column"),
        ({"feature_engineering": {"correlation_threshold": 2}}, "processing.feature_engineering.correlation_threshold"),
        ({"sampling": {"method": "random"}}, "processing.sampling.fraction"),
        ({"sampling": {"method": "stratified", "fraction": 0.5}}, "processing.sampling.column"),
        ({"sampling": {"method": "bootstrap"}}, "processing.sampling.method"),
        ({"augmentation": {"enabled": True, "methods": ["rotate"]}}, "processing.augmentation.methods"),
    ]
    for config, field in cases:
        with pytest.raises(InvalidArgument) as excinfo:
            fit_processing(frame, config)
        assert _field_of(excinfo) == field, config
    with pytest.raises(InvalidArgument) as excinfo:
        fit_processing(frame, {"normalization": {"method": "nope"}}, field="data_pipeline.processing")
    assert _field_of(excinfo) == "data_pipeline.processing.normalization.method"


def test_message_to_dict_spellings_are_accepted():
    # int64 fields arrive as strings and unset fields are simply absent.
    frame = _labelled(6, 4)
    fitted = fit_processing(frame, {"sampling": {"method": "RANDOM", "fraction": 0.5, "seed": "42"}})
    assert fitted["steps"][0]["seed"] == 42 and len(apply_processing(frame, fitted, fitting=True)) == 5


# ----- tables


def test_process_table_and_apply_to_table(tmp_path):
    train, test = _frames()
    train_path, test_path = str(tmp_path / "train.parquet"), str(tmp_path / "test.parquet")
    write_table(pa.Table.from_pandas(train, preserve_index=False), train_path, label_column="y")
    write_table(pa.Table.from_pandas(test, preserve_index=False), test_path, label_column="y")
    config = {"imputation": {"strategy": "mean"}, "normalization": {"method": "standard"}, "encoding": {"method": "onehot"},
              "sampling": {"method": "undersample"}}

    result, fitted = process_table(train_path, str(tmp_path / "out.parquet"), config, seed=1, label_column="y")
    assert fitted["label_column"] == "y"  # the dataset's label: never scaled
    written = pq.read_table(result.path).to_pandas()
    source = pq.read_table(train_path).to_pandas()
    expected = apply_processing(source, fitted, fitting=True)
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert result.row_count == len(written) and (written["y"] == 0).sum() == (written["y"] == 1).sum()
    assert set(written["y"]) <= {0, 1}

    applied = apply_to_table(test_path, str(tmp_path / "test_out.parquet"), json.loads(json.dumps(fitted)), label_column="y")
    test_written = pq.read_table(applied.path).to_pandas()
    assert applied.row_count == len(test)  # no sampling on other data
    pd.testing.assert_frame_equal(test_written, apply_processing(pq.read_table(test_path).to_pandas(), fitted), check_dtype=False)
    assert list(test_written.columns) == fitted["output_columns"]

    with pytest.raises(InvalidArgument) as excinfo:
        process_table(train_path, str(tmp_path / "x.parquet"), {"feature_engineering": {"label_column": "n"}}, label_column="y")
    assert _field_of(excinfo) == "processing.feature_engineering.label_column"
    assert not (tmp_path / "x.parquet").exists()
