import pytest
from brainscan_gateway.settings import GatewaySettings
from brainscan_servicekit import usable_cpus
from pydantic import ValidationError


def test_environment_variables_with_the_gateway_prefix(monkeypatch, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("alpha\n# comment\n beta  # trailing comment\n")
    monkeypatch.setenv("GATEWAY_INFERENCE_URL", "http://inference:8001/")
    monkeypatch.setenv("GATEWAY_CLASS_THRESHOLDS", '{"glioma": 0.7}')
    monkeypatch.setenv("GATEWAY_API_KEYS", '["gamma"]')
    monkeypatch.setenv("GATEWAY_API_KEYS_FILE", str(keys))
    monkeypatch.setenv("GATEWAY_CORS_ALLOW_ORIGINS", '["https://a.example"]')
    settings = GatewaySettings()
    assert settings.inference_url == "http://inference:8001"
    assert settings.class_thresholds == {"glioma": 0.7}
    assert settings.accepted_api_keys() == {"alpha", "beta", "gamma"}
    assert settings.cors_allow_origins == ["https://a.example"]
    assert "gamma" not in repr(settings)  # keys are secrets: never printed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("class_thresholds", {"glioma": 1.5}),
        ("inference_url", "inference:8001"),
        ("log_level", "LOUD"),
        ("default_threshold", -0.1),
        ("max_upload_bytes", 10),
        ("max_concurrent_decodes", 0),
        ("trusted_proxy_hops", 0),
        ("dicomweb_push_url", "orthanc:8042/dicom-web"),
        ("dicomweb_series_pattern", "(unclosed"),
        ("dicomweb_max_instances", 0),
        ("dicomweb_max_body_bytes", 10),
    ],
)
def test_invalid_values_are_refused_at_start(field, value):
    with pytest.raises(ValidationError):
        GatewaySettings(**{field: value})


def test_every_field_is_documented():
    for name, field in GatewaySettings.model_fields.items():
        assert field.description, f"GATEWAY_{name.upper()} has no description"


def test_decode_slots_default_to_twice_the_usable_cpus():
    assert usable_cpus() >= 1
    assert GatewaySettings().max_concurrent_decodes == 2 * usable_cpus()
    assert GatewaySettings().trusted_proxy_hops == 1


def test_dicomweb_push_url_empty_is_off_and_loses_its_trailing_slash(monkeypatch):
    monkeypatch.setenv("GATEWAY_DICOMWEB_PUSH_URL", "")
    assert GatewaySettings().dicomweb_push_url is None
    monkeypatch.setenv("GATEWAY_DICOMWEB_PUSH_URL", "http://orthanc:8042/dicom-web/")
    monkeypatch.setenv("GATEWAY_DICOMWEB_PUSH_PASSWORD", "s3cret")
    settings = GatewaySettings()
    assert settings.dicomweb_push_url == "http://orthanc:8042/dicom-web"
    assert "s3cret" not in repr(settings)
