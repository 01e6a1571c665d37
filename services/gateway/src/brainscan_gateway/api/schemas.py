"""Response bodies of the public API (they are the OpenAPI schema clients see)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelRef(BaseModel):
    name: str = Field(description="Model name, as registered.")
    version: str | None = Field(description="Registry version of the model that answered.")
    role: str = Field(
        "production",
        description="production: the served model answered; challenger: a canary answer, "
        "given by the challenger before it is promoted (GATEWAY_CANARY_FRACTION).",
    )


class Timings(BaseModel):
    decode_ms: float = Field(description="Checking, decoding and resizing the upload.")
    inference_ms: float = Field(description="The call to the inference service.")
    explain_ms: float = Field(0.0, description="Drawing the activation-map overlay.")
    total_ms: float = Field(description="Whole request handling in the gateway.")


class ImageInfo(BaseModel):
    format: str = Field(description="Format detected from the content: jpeg, png or dicom.")
    width: int
    height: int


class ActivationMap(BaseModel):
    label: str = Field(description="Class the map explains (the predicted one).")
    overlay_png: str = Field(description="PNG (base64) of the image with the map blended in.")


class OodCheck(BaseModel):
    score: float | None = Field(
        description="The guard's score: higher is less like the training images (null: no guard)."
    )
    threshold: float | None = Field(description="Above this score the image is not assessed.")
    cue: str | None = Field(description="The guard's strongest cue for this image.")
    reason: str = Field(description="The verdict in words, for the person reading the answer.")


class FrameInfo(BaseModel):
    index: int = Field(ge=1, description="The frame classified, numbered from 1 as DICOM does.")
    count: int = Field(ge=2, description="Frames in the file (NumberOfFrames).")


class Prediction(BaseModel):
    request_id: str = Field(description="Also in the X-Request-ID header and in the logs.")
    label: str = Field(description="Predicted class (highest probability).")
    confidence: float = Field(ge=0, le=1, description="Probability of the predicted class.")
    uncertain: bool = Field(
        description="True when confidence is below the threshold or the image is out of "
        "distribution: review the image manually."
    )
    threshold: float = Field(description="Threshold applied to the predicted class.")
    in_distribution: bool | None = Field(
        description="Whether the image looks like the images the model was trained on; null "
        "when the served model carries no training reference (the check is unavailable)."
    )
    assessed: bool = Field(
        description="False when the image is out of distribution: the label and probabilities "
        "stay in the answer for audit, but they are not a finding (and uncertain is true)."
    )
    ood: OodCheck = Field(description="The out-of-distribution guard's verdict.")
    probabilities: dict[str, float] = Field(description="Probability per class, in model order.")
    model: ModelRef
    image: ImageInfo
    timings: Timings
    activation_map: ActivationMap | None = Field(
        None, description="With explain=true: where the evidence for the label lies."
    )
    preview_png: str | None = Field(
        None, description="With preview=true: the decoded image as PNG (base64), e.g. for DICOM."
    )
    frame: FrameInfo | None = Field(
        None,
        description="For a multi-frame DICOM: the frame classified (the frame parameter, else "
        "the middle one, (count + 1) // 2); null for a single-frame DICOM, JPEG or PNG.",
    )


class InputInfo(BaseModel):
    height: int
    width: int
    channels: int
    color: str
    layout: str
    dtype: str
    resize_filter: str


class Thresholds(BaseModel):
    default: float = Field(description="Threshold for classes without their own.")
    per_class: dict[str, float] = Field(description="Threshold applied to each class.")
    ignored_overrides: list[str] = Field(
        description="Configured class names the model does not have (not applied)."
    )


class OodInfo(BaseModel):
    available: bool = Field(description="Whether the served model carries the guard.")
    threshold: float | None = None
    false_alarm_rate: float | None = Field(
        None, description="Share of in-distribution validation images the guard flags."
    )
    cues: dict[str, str] = Field(
        default_factory=dict, description="The guard's cues and what each looks at."
    )
    method: str | None = None
    metrics: dict[str, float] = Field(
        default_factory=dict, description="The guard measured on held-out data."
    )


class UploadLimits(BaseModel):
    formats: list[str]
    max_upload_bytes: int
    max_image_pixels: int
    min_image_side: int


class ShadowInfo(BaseModel):
    version: str = Field(description="The challenger's registry version, held in shadow.")
    fraction: float = Field(description="Share of answered predictions mirrored to it.")
    mirrored: int = Field(description="Predictions it answered too, compared with the champion.")
    dropped: int = Field(description="Offered for comparison but dropped: too busy.")
    failed: int = Field(description="Mirrored predictions the challenger failed.")
    agreed: int = Field(description="Compared predictions with the same label.")
    agreement: float | None = Field(description="agreed / mirrored (null before the first).")
    confusion: dict[str, dict[str, int]] = Field(
        description="Champion label -> challenger label -> predictions."
    )
    distribution: dict[str, dict[str, int]] = Field(
        description="Champion -> challenger out-of-distribution verdict -> predictions."
    )


class FeedbackInfo(BaseModel):
    enabled: bool = Field(description="Whether reviewers' feedback is taken and stored.")
    window_seconds: float | None = Field(
        description="How long after its answer a prediction can get feedback (null: off)."
    )


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        min_length=1,
        max_length=100,
        description="The right class, one of the model's classes; the model's own label "
        "confirms its answer.",
    )
    comment: str | None = Field(
        None,
        max_length=2000,
        description="Optional note for the data team; stored with the image, never logged. "
        "Write no patient names, IDs or dates here.",
    )


class FeedbackReceipt(BaseModel):
    request_id: str
    label: str = Field(description="The reviewer's label, as stored.")
    model_label: str = Field(description="The label the model answered.")
    confirmation: bool = Field(description="True when the reviewer agreed with the model.")
    image_sha256: str = Field(description="sha256 of the stored PNG (its name in the store).")
    model: ModelRef


class ModelInfo(BaseModel):
    name: str
    version: str | None
    description: str
    classes: list[str]
    input: InputInfo
    thresholds: Thresholds
    explain_available: bool = Field(description="Whether explain=true can draw activation maps.")
    ood: OodInfo = Field(description="The out-of-distribution guard of the served model.")
    metrics: dict[str, float] = Field(description="Metrics of the model on its test split.")
    uploads: UploadLimits
    feedback: FeedbackInfo = Field(description="Whether reviewers can give feedback here.")
    shadow: ShadowInfo | None = Field(
        description="The challenger in shadow and how it compares, as this gateway replica saw "
        "it since it started (null: no challenger, or mirroring is off)."
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code (see docs/gateway.md).")
    message: str = Field(description="What went wrong and what to do, in words.")
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
