from brainscan_gateway.prediction.thresholds import ThresholdPolicy
from brainscan_manifest import Manifest

MANIFEST = Manifest.model_validate(
    {
        "name": "m",
        "classes": ["a", "b", "c"],
        "input": {"name": "image", "height": 8, "width": 8},
        "outputs": {"probabilities": "p"},
        "default_threshold": 0.6,
        "onnx_sha256": "0" * 64,
    }
)


def test_manifest_default_applies_without_settings():
    policy = ThresholdPolicy.for_model(MANIFEST, None, {})
    assert policy.per_class == {"a": 0.6, "b": 0.6, "c": 0.6}
    assert policy.is_uncertain("a", 0.59) and not policy.is_uncertain("a", 0.6)


def test_settings_override_default_and_per_class():
    policy = ThresholdPolicy.for_model(MANIFEST, 0.4, {"b": 0.9, "zzz": 0.1})
    assert policy.default == 0.4
    assert policy.per_class == {"a": 0.4, "b": 0.9, "c": 0.4}
    assert policy.ignored == ("zzz",)
    assert policy.is_uncertain("b", 0.85) and not policy.is_uncertain("a", 0.85)
