"""Every knob of the gateway, read from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

import re
from pathlib import Path

from brainscan_servicekit import ServiceSettings, usable_cpus
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

MIB = 1024 * 1024


class GatewaySettings(ServiceSettings):
    """Settings of the gateway; each field is documented where it is declared."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    # --- the inference service behind -------------------------------------------------------
    inference_url: str = "http://localhost:8001"
    """Base URL of the inference service (Open Inference Protocol v2 over REST)."""

    model_name: str = "brainscan-mobilenetv2"
    """Name of the model to ask inference for (`/v2/models/{name}/...`)."""

    inference_connect_timeout: float = Field(1.0, gt=0)
    """Seconds to open a connection to inference before the attempt counts as failed."""

    inference_timeout: float = Field(10.0, gt=0)
    """Seconds to wait for inference to answer once the request is sent (then 504)."""

    inference_pool_timeout: float = Field(2.0, gt=0)
    """Seconds a request may wait for a free pooled connection (then 503)."""

    inference_max_connections: int = Field(64, ge=1)
    """Most concurrent connections to inference from one gateway process."""

    inference_max_keepalive: int = Field(32, ge=0)
    """0 closes each connection to inference after its request; any other value keeps idle
    connections open for reuse (no more than were in use at once, each closed after 5 s idle)."""

    inference_connect_retries: int = Field(2, ge=0, le=10)
    """Extra attempts after a connect error (the only error retried: nothing was sent)."""

    inference_retry_backoff: float = Field(0.05, ge=0)
    """Seconds before the first connect retry; doubles for each further one."""

    breaker_failure_threshold: int = Field(5, ge=1)
    """Consecutive inference failures (unreachable, timeout, 5xx) that open the circuit."""

    breaker_open_seconds: float = Field(10.0, gt=0)
    """Seconds the circuit stays open (requests get 503 + Retry-After) before one probe."""

    manifest_refresh_seconds: float = Field(30.0, ge=0)
    """Seconds a fetched model manifest is trusted before it is fetched again (0: every request).
    A new model version is also noticed at once, when inference no longer serves the old one."""

    # --- uploads ----------------------------------------------------------------------------
    max_upload_bytes: int = Field(20 * MIB, ge=1024)
    """Largest request body for a prediction (the whole multipart body); larger gets 413, checked
    from Content-Length and while the body streams in."""

    max_image_pixels: int = Field(16_000_000, ge=1)
    """Largest width x height an upload may declare; checked on the header before decoding.
    16 Mpx (4000x4000) is well above any MRI slice (at most ~2000 px a side) and bounds the
    memory one decode takes (~3 bytes per pixel for a 16-bit PNG)."""

    max_concurrent_decodes: int = Field(default_factory=lambda: 2 * usable_cpus(), ge=1)
    """Uploads decoded, preprocessed or rendered at once, in worker threads; more wait their
    turn. Default: twice the CPUs the process may use (affinity and cgroup quota). Bounds the
    memory large images can take together and keeps CPU for the event loop."""

    min_image_side: int = Field(32, ge=1)
    """Smallest width or height, in pixels, of an image worth classifying."""

    preview_max_side: int = Field(512, ge=64, le=4096)
    """Longest side, in pixels, of the preview and activation-map overlay PNGs returned."""

    # --- decisions ----------------------------------------------------------------------------
    default_threshold: float | None = Field(None, ge=0, le=1)
    """Confidence below which a prediction is flagged uncertain; unset: the manifest's default."""

    class_thresholds: dict[str, float] = Field(default_factory=dict)
    """Per-class thresholds overriding the default, as JSON: `{"glioma": 0.7}`. Names that are
    not classes of the served model are reported in `GET /api/v1/model` and ignored."""

    drift_window: int = Field(500, ge=10, le=100_000)
    """Latest predictions per model version compared with the model's training reference at
    `GET /api/v1/monitoring` and in the `gateway_drift_*` metrics (class mix, confidence, input
    intensity, out-of-distribution rate). Larger windows notice smaller shifts, later."""

    # --- results as DICOM ----------------------------------------------------------------------
    sr_series_description: str = Field(
        "brainscan AI result - NOT FOR DIAGNOSTIC USE", min_length=1, max_length=64
    )
    """Series Description of the DICOM SR results (`Accept: application/dicom`), what a viewer
    shows in its series list. Keep "not for diagnostic use" in it while the model is the
    stand-in. At most 64 characters, no backslash (DICOM LO)."""

    # --- DICOMweb: the STOW-RS receiver and where its results go ------------------------------
    dicomweb_push_url: str | None = None
    """Base URL of the DICOMweb server the SRs of `POST /dicomweb/studies` are stored to with
    STOW-RS (`{url}/studies`), e.g. `http://orthanc:8042/dicom-web`. Unset: the receiver is off
    (its routes answer 404), since the gateway keeps no results of its own."""

    dicomweb_push_username: str | None = None
    """User name for HTTP basic authentication at the push server (with the password)."""

    dicomweb_push_password: SecretStr | None = None
    """Password for HTTP basic authentication at the push server; never logged."""

    dicomweb_push_timeout: float = Field(30.0, gt=0)
    """Seconds the push server may take to store a request's SRs before they count as failed."""

    dicomweb_series_pattern: str = ".*"
    """Regular expression (Python `re.search`) a received MR instance's SeriesDescription must
    match to be classified (an absent description is empty); others are skipped, and the answer
    says so. Default: any series. Example: `(?i)t1|t2|flair`."""

    dicomweb_max_instances: int = Field(256, ge=1, le=10_000)
    """Most DICOM instances one STOW-RS request may carry (more: 413); each is classified."""

    dicomweb_max_body_bytes: int = Field(256 * MIB, ge=1024)
    """Largest STOW-RS request body; larger gets 413, checked from Content-Length and while the
    body streams in. The body is held in memory while its instances are classified."""

    # --- the challenger in shadow ------------------------------------------------------------
    shadow_fraction: float = Field(1.0, ge=0, le=1)
    """Share of answered predictions mirrored to the challenger inference holds in shadow, off
    the answer path (0: never; nothing is mirrored while there is no challenger)."""

    shadow_queue_size: int = Field(64, ge=1, le=10_000)
    """Predictions waiting to be mirrored; when full, new ones are dropped (counted), never
    queued without bound."""

    shadow_concurrency: int = Field(2, ge=1, le=64)
    """Mirrored calls to the challenger in flight at once (each worker sends one at a time)."""

    shadow_refresh_seconds: float = Field(10.0, gt=0)
    """Seconds between asks of inference which challenger it holds."""

    shadow_timeout: float = Field(5.0, gt=0)
    """Seconds a mirrored call may take before it counts as failed."""

    shadow_max_answers_in_flight: int = Field(default_factory=lambda: 2 * usable_cpus(), ge=0)
    """Mirroring gives way to answers: while more predictions than this are being answered at
    once, offers are dropped (`answers_busy`), so the challenger's work never competes with
    answers for the cores. Default: twice the CPUs the process may use. Higher: more evidence
    under load, at the answers' expense."""

    canary_fraction: float = Field(0.0, ge=0, le=1)
    """Share of predictions answered by the challenger in shadow instead of the served model,
    each answer saying so (`model.role: challenger`); one the challenger cannot give falls back
    to the served model. 0: none. Needs mirroring on (`shadow_fraction` > 0) to know the
    challenger."""

    # --- reviewers' feedback ------------------------------------------------------------------
    feedback_dir: Path | None = None
    """Folder where reviewers' feedback is stored (one PNG of the pixels named by its sha256 and
    one JSON record each); unset: feedback is off and no image is held after its answer."""

    feedback_window_seconds: float = Field(900.0, gt=0, le=86_400)
    """Seconds after its answer during which a prediction can get feedback: its decoded pixels
    are held in memory that long (never on disk), then dropped and feedback answers 410."""

    feedback_max_pending: int = Field(256, ge=1, le=100_000)
    """Most predictions held in memory for feedback at once; beyond it the oldest is dropped."""

    feedback_max_pending_bytes: int = Field(256 * MIB, ge=MIB)
    """Most bytes of decoded pixels held for feedback at once (width x height x channels); the
    oldest are dropped to make room, and an image larger than this is not held at all."""

    # --- access control ---------------------------------------------------------------------
    api_keys: list[SecretStr] = Field(default_factory=list)
    """API keys accepted in the `X-API-Key` header, as a JSON list. With no keys (here or in
    `api_keys_file`), the API is open."""

    api_keys_file: Path | None = None
    """A file with one API key per line (e.g. a mounted Kubernetes secret); `#` starts a comment.
    Read at start-up, added to `api_keys`."""

    rate_limit_per_minute: float = Field(120.0, ge=0)
    """Prediction requests per minute each client may make (0: no limit); beyond it 429."""

    rate_limit_burst: int = Field(20, ge=1)
    """Requests a client may send at once before the per-minute rate applies."""

    trust_forwarded_for: bool = False
    """Identify clients by `X-Forwarded-For` (only behind proxies that append to it, such as an
    ingress); otherwise by the connection's address. A client with an API key is known by its
    key."""

    trusted_proxy_hops: int = Field(1, ge=1, le=10)
    """With `trust_forwarded_for`: how many proxies in front of the gateway append to
    `X-Forwarded-For`. The client is the address that many entries from the right (what the
    outermost trusted proxy saw); entries further left are client-controlled and ignored. With
    fewer entries than hops, the connection's address is used."""

    cors_allow_origins: list[str] = Field(default_factory=list)
    """Origins allowed to call the API from a browser on another site, as a JSON list
    (e.g. `["https://viewer.example.org"]`). Empty: same origin only (the page needs none)."""

    hsts_seconds: int = Field(0, ge=0)
    """Send `Strict-Transport-Security` with this max-age when > 0 (only when served over HTTPS)."""

    docs_enabled: bool = True
    """Serve the OpenAPI document and the interactive docs at `/docs`."""

    # --- process ------------------------------------------------------------------------------
    host: str = "0.0.0.0"
    """Interface uvicorn binds to."""

    port: int = Field(8000, ge=1, le=65535)
    """TCP port uvicorn listens on."""

    @field_validator("class_thresholds")
    @classmethod
    def _thresholds_are_probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold for {name!r} must be within 0..1, got {threshold}")
        return value

    @field_validator("sr_series_description")
    @classmethod
    def _long_string(cls, value: str) -> str:
        if "\\" in value or not value.isprintable():
            raise ValueError("sr_series_description must be printable text without a backslash")
        return value

    @field_validator("inference_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"inference_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("dicomweb_push_url")
    @classmethod
    def _push_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("dicomweb_push_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("dicomweb_series_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"dicomweb_series_pattern is not a regular expression: {exc}") from exc
        return value

    def accepted_api_keys(self) -> frozenset[str]:
        """Keys from settings plus the key file; empty means the API is open."""
        keys = {key.get_secret_value() for key in self.api_keys if key.get_secret_value()}
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text().splitlines():
                key = line.split("#", 1)[0].strip()
                if key:
                    keys.add(key)
        return frozenset(keys)
