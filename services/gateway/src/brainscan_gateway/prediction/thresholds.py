"""Confidence thresholds: the manifest's default, overridden globally or per class by settings.

A prediction whose confidence is below its class's threshold is still returned, but flagged
``uncertain`` so that a person reviews it.
"""

from __future__ import annotations

from dataclasses import dataclass

from brainscan_manifest import Manifest


@dataclass(frozen=True)
class ThresholdPolicy:
    """The threshold each class of one model is held to."""

    default: float
    per_class: dict[str, float]
    ignored: tuple[str, ...] = ()
    """Configured class names the model does not have (reported, never applied)."""

    @classmethod
    def for_model(
        cls, manifest: Manifest, default: float | None, overrides: dict[str, float]
    ) -> ThresholdPolicy:
        base = manifest.default_threshold if default is None else default
        known = {name: value for name, value in overrides.items() if name in manifest.classes}
        ignored = tuple(sorted(set(overrides) - set(known)))
        return cls(
            default=base,
            per_class={name: known.get(name, base) for name in manifest.classes},
            ignored=ignored,
        )

    def threshold_for(self, label: str) -> float:
        return self.per_class.get(label, self.default)

    def is_uncertain(self, label: str, confidence: float) -> bool:
        return confidence < self.threshold_for(label)
