import pytest

from prefork_asgi import PoolSettingError, pool_settings


def test_the_supervisors_numbers_are_the_apps():
    assert pool_settings({"DB_POOL_SIZE": "7", "DB_MAX_OVERFLOW": "3"}) == {"pool_size": 7, "max_overflow": 3}
    assert pool_settings({}) == {"pool_size": 10, "max_overflow": 10}
    assert pool_settings({}, size=5, overflow=0) == {"pool_size": 5, "max_overflow": 0}
    assert pool_settings({"DB_POOL_SIZE": " 4 "}) == {"pool_size": 4, "max_overflow": 10}


@pytest.mark.parametrize("value, fragment", [
    ("auto", "worked out by the supervisor"), ("-1", "whole number"), ("ten", "whole number"), ("٣", "whole number"),
])
def test_values_the_app_cannot_use_name_the_variable(value, fragment):
    with pytest.raises(PoolSettingError) as error:
        pool_settings({"DB_POOL_SIZE": value})
    assert "DB_POOL_SIZE" in str(error.value) and fragment in str(error.value)


def test_no_persistent_connections_is_not_no_limit():
    # SQLAlchemy reads pool_size=0 as "no limit"; the budget counted only the overflow.
    assert pool_settings({"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "4"}) == {"pool_size": 4, "max_overflow": 0}
    with pytest.raises(PoolSettingError):
        pool_settings({"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "0"})
