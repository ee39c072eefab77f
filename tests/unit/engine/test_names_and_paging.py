import pytest

from engine import names
from engine.errors import InvalidArgument
from engine.paging import next_token, page_bounds, parse_filter


def test_bare_ids_and_full_names_resolve_to_the_same_resource():
    assert names.resolve("abc", "datasets") == "projects/default/datasets/abc"
    assert names.resolve("projects/p1/datasets/abc", "datasets") == "projects/p1/datasets/abc"


@pytest.mark.parametrize("bad", ["Abc", "projects/p/trainingJobs/x", "projects//datasets/x", "a/b", "x" * 64])
def test_bad_names_name_the_field(bad):
    with pytest.raises(InvalidArgument) as err:
        names.resolve(bad, "datasets", "data_config.train_dataset")
    assert err.value.violations[0].field == "data_config.train_dataset"


def test_page_tokens_round_trip_and_reject_garbage():
    offset, limit = page_bounds(10, "")
    assert (offset, limit) == (0, 10)
    token = next_token(offset, limit, 10, True)
    assert page_bounds(10, token) == (10, 10)
    assert next_token(0, 10, 3, False) == ""
    with pytest.raises(InvalidArgument):
        page_bounds(10, "not-a-token")
    assert page_bounds(5000, "")[1] == 1000


def test_filter_language():
    assert parse_filter("state=RUNNING AND label.team=fraud", {"state"}) == {"state": "RUNNING",
                                                                          "label.team": "fraud"}
    with pytest.raises(InvalidArgument, match="unknown filter key"):
        parse_filter("colour=red", {"state"})
