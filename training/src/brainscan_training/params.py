"""params.yaml as typed settings, with the active profile resolved."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from brainscan_manifest import InputSpec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .weights import IMAGENET_ALPHAS, WEIGHTS_SUFFIXES

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# dvc.yaml's data stage depends on the folder `data.source_dir` names, so DVC hashes its content.
# With the synthetic source that folder is the generator's code (what the images come from).
SYNTHETIC_SOURCE_DIR = "libs/synthetic-mri/src/brainscan_synthetic_mri"


class DataParams(_Section):
    source: Literal["synthetic", "directory"] = "synthetic"
    source_dir: str = SYNTHETIC_SOURCE_DIR
    image_size: int = Field(256, ge=32)
    val_fraction: float = Field(0.15, gt=0.0, lt=0.9)
    # drop: keep one copy of each duplicate group (rules in docs/data.md); fail: stop on any.
    duplicates: Literal["drop", "fail"] = "drop"
    # Perceptual-hash bits (of 256) within which two images count as the same (docs/data.md).
    near_duplicate_distance: int = Field(12, ge=0, le=64)

    @model_validator(mode="after")
    def _directory_needs_path(self) -> DataParams:
        if not self.source_dir:
            raise ValueError(
                "data.source_dir is empty: it names the data set's folder (source: directory) or "
                f"{SYNTHETIC_SOURCE_DIR} (source: synthetic); DVC hashes it"
            )
        if self.source == "directory" and self.source_dir == SYNTHETIC_SOURCE_DIR:
            raise ValueError(
                "data.source is 'directory' but data.source_dir still names the synthetic "
                "generator: point it at the folder holding Training/ and Testing/"
            )
        if self.source_dir.startswith("~"):
            # DVC reads the path as written: it would look for a folder named "~".
            raise ValueError(
                f"data.source_dir {self.source_dir!r}: write the path out (absolute or relative "
                "to the repository root); DVC does not expand ~"
            )
        return self


class ModelParams(_Section):
    name: str = "brainscan-mobilenetv2"
    alpha: float = Field(0.35, gt=0.0)
    input_size: int = Field(128, ge=32)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    # none (from scratch), imagenet (Keras' cached file) or a path to a local .h5 weights file;
    # brainscan_training.weights checks the file exists before training (nothing downloads).
    weights: str = "none"
    resize_filter: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"
    default_threshold: float = Field(0.6, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _weights_are_known(self) -> ModelParams:
        if self.weights in ("none", "imagenet"):
            if self.weights == "imagenet" and self.alpha not in IMAGENET_ALPHAS:
                raise ValueError(
                    f"model.weights is imagenet but no ImageNet weights exist for alpha "
                    f"{self.alpha} (Keras has them for {', '.join(map(str, IMAGENET_ALPHAS))})"
                )
        elif not self.weights.endswith(WEIGHTS_SUFFIXES):
            raise ValueError(
                f"model.weights must be none, imagenet or a path to a .h5 weights file "
                f"(as Keras saves them, e.g. backbone.weights.h5); got {self.weights!r}"
            )
        return self


class ProfileParams(_Section):
    train_per_class: int = Field(ge=1)
    test_per_class: int = Field(ge=1)
    epochs: int = Field(ge=1)
    finetune_epochs: int = Field(0, ge=0)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(gt=0.0)
    finetune_learning_rate: float = Field(gt=0.0)
    finetune_top_layers: int = Field(40, ge=0)
    early_stopping_patience: int = Field(3, ge=1)


class AugmentationParams(_Section):
    flip: bool = True
    rotation: float = Field(0.0, ge=0.0, le=0.5)
    zoom: float = Field(0.0, ge=0.0, le=0.5)
    contrast: float = Field(0.0, ge=0.0, le=1.0)


class ExportParams(_Section):
    opset: int = Field(17, ge=17)
    parity_images: int = Field(64, ge=1)


class OodParams(_Section):
    """The out-of-distribution guard (docs/ood.md)."""

    false_alarm_rate: float = Field(0.01, gt=0.0, lt=0.5)
    fit_images: int = Field(4000, ge=2)
    appearance: bool = True
    appearance_epochs: int = Field(10, ge=1)
    appearance_repeats: int = Field(2, ge=1)


class RegisterParams(_Section):
    promote: Literal["auto", "never"] = "auto"
    min_improvement: float = 0.0
    # The shadow gate (shadow_evidence.py): `production` moves to a challenger only after this
    # many predictions compared in shadow at this agreement; both 0: no gate.
    shadow_min_requests: int = Field(0, ge=0)
    shadow_min_agreement: float = Field(0.0, ge=0.0, le=1.0)
    shadow_evidence_kind: Literal["gateway", "prometheus"] = "gateway"
    shadow_evidence_url: str | None = None


class Params(_Section):
    profile: str
    classes: list[str] = Field(min_length=2)
    seed: int = 7
    data: DataParams
    model: ModelParams
    profiles: dict[str, ProfileParams]
    augmentation: AugmentationParams = AugmentationParams()
    export: ExportParams = ExportParams()
    registration: RegisterParams = Field(RegisterParams(), alias="register")
    ood: OodParams = OodParams()
    # production: start from the weights of the current production model when it has the same
    # architecture (a retrain on new data then takes a fraction of the time); none: from scratch.
    warm_start: Literal["none", "production"] = "none"

    @model_validator(mode="after")
    def _profile_exists(self) -> Params:
        if self.profile not in self.profiles:
            raise ValueError(f"profile {self.profile!r} not in profiles {sorted(self.profiles)}")
        return self

    @property
    def active(self) -> ProfileParams:
        return self.profiles[self.profile]

    def flat(self) -> dict[str, object]:
        """The parameters that shaped this run, flattened for MLflow (active profile only)."""
        flat: dict[str, object] = {
            "profile": self.profile,
            "seed": self.seed,
            "warm_start": self.warm_start,
        }
        sections = {
            "data": self.data,
            "model": self.model,
            "train": self.active,
            "augmentation": self.augmentation,
            "export": self.export,
            "ood": self.ood,
        }
        for prefix, section in sections.items():
            for key, value in section.model_dump().items():
                flat[f"{prefix}.{key}"] = value
        return flat


def load_params(path: Path = DEFAULT_PARAMS, profile: str | None = None) -> Params:
    raw = yaml.safe_load(Path(path).read_text())
    if profile:
        raw["profile"] = profile
    return Params.model_validate(raw)


class ParamsOverrideError(ValueError):
    """An override (`brainscan-train params --set KEY=VALUE`) that cannot be applied."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` -> (the dotted key's parts, the value read as a YAML scalar or list, so
    ``seed=8`` is an int, ``augmentation.flip=false`` a bool and ``data.source_dir=/data`` a
    string)."""
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ParamsOverrideError(f"--set {text!r}: expected KEY=VALUE, e.g. data.source_dir=/data")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ParamsOverrideError(f"--set {text!r}: the value cannot be read ({problem})") from None
    return parts, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` (params.yaml as read) with each ``KEY=VALUE`` set; missing sections are
    created. Whether the result is valid is :func:`validate_params`' question."""
    result = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        section = result
        for depth, part in enumerate(parts[:-1]):
            child = section.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ParamsOverrideError(
                    f"--set {text!r}: {prefix} is a value, not a section with keys"
                )
            section = child
        section[parts[-1]] = value
    return result


def _fields_at(location: tuple[str | int, ...]) -> list[str] | None:
    """The keys params.yaml accepts beside ``location[-1]`` (None when not a model's)."""
    model: Any = Params
    parts = list(location[:-1])
    while parts:
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        info = fields.get(str(parts.pop(0)))
        if info is None:
            return None
        annotation = info.annotation
        if get_origin(annotation) is dict:
            if not parts:
                return None
            parts.pop(0)  # the dict's key, e.g. a profile's name
            annotation = get_args(annotation)[1]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return sorted(info.alias or name for name, info in model.model_fields.items())


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error about params.yaml as one line, each problem named by its dotted key."""
    problems = []
    for error in exc.errors():
        location = tuple(error["loc"])
        key = ".".join(str(part) for part in location) or "params"
        if error["type"] == "extra_forbidden":
            known = _fields_at(location)
            hint = f" (known keys here: {', '.join(known)})" if known else ""
            problems.append(f"unknown key {key}{hint}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and error["type"] not in ("missing", "value_error"):
            message += f", got {error['input']!r}"
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def validate_params(raw: dict[str, Any]) -> Params:
    """params.yaml's content as every stage checks it (pydantic's ValidationError if not)."""
    return Params.model_validate(raw)


def input_spec(params: Params) -> InputSpec:
    """What the model takes: raw RGB uint8 pixels at the model's size (scaling is in the graph)."""
    size = params.model.input_size
    return InputSpec(
        name="image",
        height=size,
        width=size,
        channels=3,
        color="RGB",
        layout="NHWC",
        dtype="uint8",
        resize_filter=params.model.resize_filter,
    )
