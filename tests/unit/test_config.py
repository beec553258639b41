import pytest

from shared.config import Settings
from shared.environment import ConfigError

GOOD = {
    "ALIPAY_APP_ID": "2021000000000001",
    "ALIPAY_NOTIFY_URL": "https://pay.example.com/pay/notify",
    "ORDER_TABLE": "shop-prod-Order",
}


def settings(app_keys, alipay_keys, **overrides):
    env = dict(GOOD, ALIPAY_APP_PRIVATE_KEY=app_keys.private_base64(pkcs8=False), ALIPAY_PUBLIC_KEY=alipay_keys.public_pem())
    env.update(overrides)
    return Settings({k: v for k, v in env.items() if v is not None})


def test_valid_settings_parse_keys_once(app_keys, alipay_keys):
    cfg = settings(app_keys, alipay_keys).require("app_id", "app_private_key", "alipay_public_key", "notify_url", "order_table", "seller_id")
    assert cfg.app_private_key is cfg.app_private_key  # parsed once, reused
    assert cfg.seller_id is None


@pytest.mark.parametrize(
    "variable, value, attribute",
    [
        ("ALIPAY_APP_ID", None, "app_id"),
        ("ALIPAY_APP_ID", "abc", "app_id"),
        ("ALIPAY_APP_PRIVATE_KEY", None, "app_private_key"),
        ("ALIPAY_APP_PRIVATE_KEY", "MIIBroken", "app_private_key"),
        ("ALIPAY_PUBLIC_KEY", "", "alipay_public_key"),
        ("ALIPAY_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", "alipay_public_key"),
        ("ALIPAY_NOTIFY_URL", "ftp://x", "notify_url"),
        ("ALIPAY_NOTIFY_URL", "https://x/" + "a" * 300, "notify_url"),
        ("ALIPAY_SELLER_ID", "1234", "seller_id"),
        ("ORDER_TABLE", None, "order_table"),
    ],
)
def test_bad_config_names_the_variable_never_the_value(app_keys, alipay_keys, variable, value, attribute):
    cfg = settings(app_keys, alipay_keys, **{variable: value})
    with pytest.raises(ConfigError) as info:
        cfg.require(attribute)
    assert info.value.variable == variable
    assert variable in str(info.value)
    if value and len(value) > 4:
        assert value not in str(info.value)


def test_a_failed_read_is_not_cached(app_keys, alipay_keys):
    env = dict(GOOD)
    cfg = Settings(env)
    with pytest.raises(ConfigError):
        cfg.require("app_private_key")
    env["ALIPAY_APP_PRIVATE_KEY"] = app_keys.private_pem()
    assert cfg.app_private_key.key_size == 2048
