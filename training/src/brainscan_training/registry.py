"""The MLflow model registry side: register model packages, gate promotion, roll back.

The alias `production` is what model-sync serves. It moves only to a version that passes every
package check and parity, and that is not worse (macro F1) than the current production version
when both are scored by onnxruntime on the same, current test split. Otherwise the candidate gets
the alias `challenger`. Every decision and its reason is stored as version tags.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from brainscan_manifest import MANIFEST_FILE, Manifest
from brainscan_manifest.registry_contract import (
    CHALLENGER,
    PACKAGE_ARTIFACT_PATH,
    PRODUCTION,
    SHA256_TAG,
)
from brainscan_manifest.verify import PackageError, load_package, verify_package
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from .evaluate import macro_f1, predict_onnx

log = logging.getLogger(__name__)


# Scores a model package on the current test split: (onnx_path, manifest) -> macro F1.
Scorer = Callable[[Path, Manifest], float]


class RegistryError(RuntimeError):
    """A registry operation cannot be done; the message says why."""


@dataclass(frozen=True)
class Decision:
    version: str
    alias: str  # production | challenger
    reason: str
    candidate_macro_f1: float | None = None
    champion_version: str | None = None
    champion_macro_f1: float | None = None
    notes: dict[str, str] = field(default_factory=dict)
    """More version tags: the shadow evidence weighed, and what a --force overrode."""

    @property
    def promoted(self) -> bool:
        return self.alias == PRODUCTION

    def tags(self) -> dict[str, str]:
        return {
            "promotion.decision": "promoted" if self.promoted else "challenger",
            "promotion.reason": self.reason,
            "promotion.candidate_macro_f1": _fmt(self.candidate_macro_f1),
            "promotion.champion_version": self.champion_version or "",
            "promotion.champion_macro_f1": _fmt(self.champion_macro_f1),
            # Always set, so an earlier forced promotion's tags never outlive it.
            "promotion.forced": "false",
            "promotion.forced_over": "",
            **self.notes,
        }

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "promoted": self.promoted}


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


class Registry:
    def __init__(self, client: MlflowClient, model_name: str) -> None:
        self.client = client
        self.model_name = model_name

    # -- registration -------------------------------------------------------------------------
    def ensure_registered_model(self) -> None:
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(
                self.model_name,
                description="Brain MRI tumour classifier (ONNX model package with manifest).",
            )

    def register_package(self, package_dir: Path, run_id: str, extra_tags: dict[str, str]) -> str:
        """Log the verified package to the run and create a model version from it."""
        onnx_path, manifest = load_package(package_dir)
        verify_package(onnx_path, manifest)
        self.ensure_registered_model()
        self.client.log_artifact(run_id, str(onnx_path), PACKAGE_ARTIFACT_PATH)
        self.client.log_artifact(
            run_id, str(Path(package_dir) / MANIFEST_FILE), PACKAGE_ARTIFACT_PATH
        )
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        version = self.client.create_model_version(
            self.model_name,
            source=f"{artifact_uri}/{PACKAGE_ARTIFACT_PATH}",
            run_id=run_id,
            tags={**manifest.to_tags(), **extra_tags},
            description=manifest.description or None,
        )
        log.info("registered %s version %s", self.model_name, version.version)
        return str(version.version)

    # -- reading ------------------------------------------------------------------------------
    def alias_version(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def _version(self, version: str):
        try:
            return self.client.get_model_version(self.model_name, version)
        except MlflowException as exc:
            raise RegistryError(f"{self.model_name} has no version {version}") from exc

    def download_package(self, version: str, destination: Path) -> tuple[Path, Manifest]:
        """Fetch a version's ONNX + manifest and verify them against its sha256 tag."""
        model_version = self._version(version)
        import mlflow.artifacts

        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_version.source, dst_path=str(destination)
            )
        )
        onnx_path, manifest = load_package(local)
        expected = model_version.tags.get(SHA256_TAG)
        verify_package(onnx_path, manifest, expected_sha256=expected or None)
        return onnx_path, manifest

    # -- decisions ----------------------------------------------------------------------------
    def decide(
        self,
        version: str,
        candidate: tuple[Path, Manifest],
        scorer: Scorer,
        parity_passed: bool,
        min_improvement: float = 0.0,
        hold_for_shadow: str | None = None,
    ) -> Decision:
        """Apply the promotion gate to a registered candidate and record the outcome. With
        ``hold_for_shadow`` (the shadow gate, in words), a candidate that beats a production
        version stays challenger, to be promoted on its shadow evidence."""
        if not parity_passed:
            return self._apply(
                Decision(version, CHALLENGER, "ONNX export failed the Keras parity check")
            )
        candidate_f1 = scorer(*candidate)
        champion = self.alias_version(PRODUCTION)
        if champion is None:
            return self._apply(
                Decision(version, PRODUCTION, "no production version yet", candidate_f1)
            )
        try:
            with tempfile.TemporaryDirectory() as tmp:
                champion_f1 = scorer(*self.download_package(champion, Path(tmp)))
        except (PackageError, RegistryError) as exc:
            # The champion itself is unusable (damaged package, other classes): replace it.
            reason = (
                f"production version {champion} cannot be scored ({exc}); candidate replaces it"
            )
            return self._apply(Decision(version, PRODUCTION, reason, candidate_f1, champion))
        except (MlflowException, OSError) as exc:
            # A transient failure is no evidence either way: never promote untested.
            reason = (
                f"production version {champion} could not be fetched ({exc}); not promoted:"
                " rerun the register stage or promote by hand"
            )
            return self._apply(Decision(version, CHALLENGER, reason, candidate_f1, champion))
        if candidate_f1 >= champion_f1 + min_improvement:
            reason = (
                f"macro F1 {candidate_f1:.4f} >= production v{champion} {champion_f1:.4f}"
                f" (+{min_improvement:g}) on the current test split"
            )
            alias = PRODUCTION
            if hold_for_shadow:
                alias = CHALLENGER
                reason += f"; in shadow until {hold_for_shadow}, then `brainscan-train promote`"
            decision = Decision(version, alias, reason, candidate_f1, champion, champion_f1)
            return self._apply(decision)
        reason = (
            f"macro F1 {candidate_f1:.4f} < production v{champion} {champion_f1:.4f}"
            f" (+{min_improvement:g}) on the current test split"
        )
        return self._apply(
            Decision(version, CHALLENGER, reason, candidate_f1, champion, champion_f1)
        )

    def mark_challenger(self, version: str, reason: str) -> Decision:
        return self._apply(Decision(version, CHALLENGER, reason))

    def set_production(
        self, version: str, reason: str, force: bool = False, notes: dict[str, str] | None = None
    ) -> Decision:
        """Move `production` to an existing version (manual promotion or rollback) after checks.

        A version whose export failed the parity check is refused unless forced; what a force
        overrode is tagged (``promotion.forced_over``), with the caller's ``notes``.
        """
        notes = dict(notes or {})
        tags = self._version(version).tags
        if tags.get("parity.passed") == "false":
            if not force:
                raise RegistryError(
                    f"version {version} failed the ONNX parity check; use --force to serve it "
                    "anyway"
                )
            overridden = [notes.get("promotion.forced_over"), "the ONNX parity check failed"]
            notes["promotion.forced"] = "true"
            notes["promotion.forced_over"] = "; ".join(filter(None, overridden))
        with tempfile.TemporaryDirectory() as tmp:
            try:
                self.download_package(version, Path(tmp))
            except PackageError as exc:
                raise RegistryError(f"version {version} fails the package checks: {exc}") from exc
        previous = self.alias_version(PRODUCTION)
        return self._apply(
            Decision(version, PRODUCTION, reason, champion_version=previous, notes=notes)
        )

    def _apply(self, decision: Decision) -> Decision:
        self.client.set_registered_model_alias(self.model_name, decision.alias, decision.version)
        if decision.promoted and self.alias_version(CHALLENGER) == decision.version:
            self.client.delete_registered_model_alias(self.model_name, CHALLENGER)
        for key, value in decision.tags().items():
            self.client.set_model_version_tag(self.model_name, decision.version, key, value)
        log.info("version %s -> %s: %s", decision.version, decision.alias, decision.reason)
        return decision


def split_scorer(test_csv: Path, raw_dir: Path, classes: list[str]) -> Scorer:
    """Score any model package on the test split, preprocessing as *its* manifest says."""
    from .dataset import load_split

    def score(onnx_path: Path, manifest: Manifest) -> float:
        if manifest.classes != classes:
            raise RegistryError(
                f"model classes {manifest.classes} differ from the test split's {classes}"
            )
        split = load_split(test_csv, raw_dir, classes, manifest.input)
        probabilities = predict_onnx(
            onnx_path, manifest.outputs.probabilities, manifest.input.name, split.images
        )
        return macro_f1(split.labels, probabilities, len(classes))

    return score


def write_decision(decision: Decision, path: Path, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**decision.to_dict(), **extra}, indent=2) + "\n")


__all__ = [
    "CHALLENGER",
    "PRODUCTION",
    "Decision",
    "Registry",
    "RegistryError",
    "split_scorer",
    "write_decision",
]
