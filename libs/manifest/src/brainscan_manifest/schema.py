"""The model manifest: everything a service needs to serve an ONNX image classifier.

The manifest travels with the ONNX file (``manifest.json`` beside ``model.onnx``) and its scalar
fields are also stored as MLflow model-version tags, so that no service re-codes preprocessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Strict as _Strict
from .ood import OodSpec

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
SCHEMA_VERSION = 1


class InputSpec(_Strict):
    """How a client turns a decoded image into the model's input tensor."""

    name: str = Field(description="ONNX input name.")
    height: int = Field(gt=0, le=4096)
    width: int = Field(gt=0, le=4096)
    channels: Literal[1, 3] = 3
    color: Literal["RGB", "L"] = Field("RGB", description="Colour mode the image is converted to.")
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    dtype: Literal["uint8", "float32"] = Field(
        "uint8", description="Datatype of the ONNX input (v2 datatype UINT8 or FP32)."
    )
    scale: float = Field(1.0, description="Applied by the client: x * scale + offset.")
    offset: float = 0.0
    resize_filter: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"

    @model_validator(mode="after")
    def _colour_matches_channels(self) -> InputSpec:
        if (self.color == "RGB") != (self.channels == 3):
            raise ValueError(f"color {self.color!r} does not match channels={self.channels}")
        if self.dtype == "uint8" and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("a uint8 input takes raw pixels: scale must be 1 and offset 0")
        return self

    def shape(self, batch: int | None = None) -> list[int | None]:
        """The input tensor shape for a batch size (None = dynamic)."""
        if self.layout == "NHWC":
            return [batch, self.height, self.width, self.channels]
        return [batch, self.channels, self.height, self.width]


class ActivationMapSpec(_Strict):
    """Output and classifier weights needed to compute class activation maps (CAM)."""

    feature_map: str = Field(description="ONNX output name of the last convolutional feature map.")
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    # weights[k][c]: weight of feature channel k for class c (the dense layer after global pooling).
    weights: list[list[float]]
    bias: list[float]


class OutputSpec(_Strict):
    probabilities: str = Field(description="ONNX output name of the class probabilities.")
    activation_map: ActivationMapSpec | None = None


class Lineage(_Strict):
    git_commit: str | None = None
    data_hash: str | None = Field(
        None, description="DVC hash of the data the model was trained on."
    )
    params: dict[str, object] = Field(default_factory=dict)
    run_id: str | None = Field(None, description="MLflow run that produced the model.")
    warm_start_from: str | None = None


class Manifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(min_length=1, max_length=200)
    version: str | None = Field(None, description="Registry version; set at registration.")
    description: str = ""
    classes: list[str] = Field(min_length=2)
    input: InputSpec
    outputs: OutputSpec
    default_threshold: float = Field(0.5, ge=0.0, le=1.0)
    metrics: dict[str, float] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    ood: OodSpec | None = Field(
        None, description="The out-of-distribution guard; None: the model has none."
    )

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, classes: list[str]) -> list[str]:
        if len(set(classes)) != len(classes):
            raise ValueError(f"class names must be unique: {classes}")
        return classes

    @model_validator(mode="after")
    def _cam_matches_classes(self) -> Manifest:
        cam = self.outputs.activation_map
        if cam is not None:
            if any(len(row) != len(self.classes) for row in cam.weights):
                raise ValueError("activation_map.weights must have one column per class")
            if len(cam.bias) != len(self.classes):
                raise ValueError("activation_map.bias must have one value per class")
        return self

    @model_validator(mode="after")
    def _reference_matches_classes(self) -> Manifest:
        if self.ood is not None and set(self.ood.reference.class_mix) != set(self.classes):
            raise ValueError("ood.reference.class_mix must name exactly the model's classes")
        return self

    def with_version(self, version: str) -> Manifest:
        return self.model_copy(update={"version": version})

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls.model_validate_json(Path(path).read_text())

    def save(self, path: Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    def to_tags(self) -> dict[str, str]:
        """Flat string tags for a registry model version (no bulky CAM weights)."""
        tags = {
            "manifest.schema_version": str(self.schema_version),
            "manifest.name": self.name,
            "manifest.classes": json.dumps(self.classes),
            "manifest.input": self.input.model_dump_json(),
            "manifest.outputs.probabilities": self.outputs.probabilities,
            "manifest.outputs.feature_map": (
                self.outputs.activation_map.feature_map if self.outputs.activation_map else ""
            ),
            "manifest.default_threshold": str(self.default_threshold),
            "manifest.onnx_sha256": self.onnx_sha256,
            "lineage.git_commit": self.lineage.git_commit or "",
            "lineage.data_hash": self.lineage.data_hash or "",
            "lineage.run_id": self.lineage.run_id or "",
            "manifest.ood.threshold": f"{self.ood.threshold:.6g}" if self.ood else "",
            "manifest.ood.false_alarm_rate": (
                f"{self.ood.false_alarm_rate:.6g}" if self.ood else ""
            ),
        }
        tags.update({f"metric.{key}": f"{value:.6g}" for key, value in self.metrics.items()})
        return tags
