import pytest
from brainscan_gateway.errors import ErrorCode, GatewayError
from brainscan_gateway.middleware.api_keys import ApiKeyChecker


def test_no_keys_means_open():
    assert ApiKeyChecker(frozenset()).client_id(None) is None


def test_missing_wrong_and_right_keys():
    checker = ApiKeyChecker(frozenset({"k1", "k2"}))
    with pytest.raises(GatewayError) as missing:
        checker.client_id(None)
    assert missing.value.code is ErrorCode.API_KEY_MISSING and missing.value.status == 401
    with pytest.raises(GatewayError) as wrong:
        checker.client_id("k3")
    assert wrong.value.code is ErrorCode.API_KEY_INVALID
    first, second = checker.client_id("k1"), checker.client_id("k2")
    assert first.startswith("key:") and first != second
    assert "k1" not in first  # the identity used in limits and logs is not the key itself
