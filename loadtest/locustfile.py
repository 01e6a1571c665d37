"""Users of the brainscan gateway for Locust.

Clinicians upload generated MRI slices (JPEG, PNG, DICOM; 256 to 640 px), now and then with
an activation map, and look at the model's card; a few careless clients send files the gateway
must refuse, where the documented 4xx answer is the success. Anything else (5xx, 429, 503, a
body without a label) is a failure, and a headless run then exits non-zero.

Tags pick a scenario: predict, jpeg, png, dicom, explain, model, bad-input, e.g.
    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8000 -u 20 -t 1m --tags dicom
`make loadtest` runs it against a local stack (docs/loadtest.md); loadtest/shape_steps.py adds
the step load that drives the autoscaler on a cluster.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import ClassVar

from loadtest_images import CLASSES, BadUpload, Upload, make_bad_uploads, make_uploads
from locust import FastHttpUser, between, events, tag, task
from locust.env import Environment

PREDICT = "/api/v1/predictions"
MODEL = "/api/v1/model"


@dataclass(frozen=True)
class Form:
    """A prepared multipart body: built once, sent many times (the load generator stays light)."""

    body: bytes
    content_type: str


def multipart(name: str, data: bytes, content_type: str) -> Form:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return Form(
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


class Corpus:
    """The uploads every user draws from, made once per process when Locust starts."""

    uploads: ClassVar[dict[str, list[tuple[Upload, Form]]]] = {}
    bad: ClassVar[list[tuple[BadUpload, Form]]] = []


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument(
        "--images-per-variant",
        type=int,
        default=2,
        env_var="LOCUST_IMAGES_PER_VARIANT",
        help="generated slices per (format, size) variant; 7 variants",
    )
    parser.add_argument(
        "--api-key",
        default="",
        env_var="LOCUST_API_KEY",
        is_secret=True,
        help="sent as X-API-Key when the gateway requires keys",
    )


@events.init.add_listener
def _make_corpus(environment: Environment, **_kwargs) -> None:
    options = environment.parsed_options
    per_variant = options.images_per_variant if options is not None else 2
    Corpus.uploads = {}
    for upload in make_uploads(per_variant=per_variant):
        form = multipart(upload.name, upload.data, upload.content_type)
        Corpus.uploads.setdefault(upload.image_format, []).append((upload, form))
    Corpus.bad = [
        (bad, multipart(bad.name, bad.data, bad.content_type)) for bad in make_bad_uploads()
    ]


class GatewayUser(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        options = self.environment.parsed_options
        key = getattr(options, "api_key", "") if options is not None else ""
        self.auth = {"X-API-Key": key} if key else {}


class Clinician(GatewayUser):
    """Reads slices one after another: mostly JPEG exports, some PNG and DICOM."""

    weight = 10
    wait_time = between(0.5, 2.0)

    def _predict(self, image_format: str, explain: bool = False) -> None:
        upload, form = random.choice(Corpus.uploads[image_format])
        path = f"{PREDICT}?explain=true" if explain else PREDICT
        name = f"{PREDICT} [{image_format}{' explain' if explain else ''}]"
        headers = {**self.auth, "Content-Type": form.content_type}
        with self.client.post(
            path, data=form.body, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            body = json.loads(response.text)
            if body.get("label") not in CLASSES or not body.get("model", {}).get("version"):
                response.failure(f"no usable prediction in {response.text[:200]}")
            elif explain and not body.get("activation_map"):
                response.failure("explain=true but no activation map")
            elif body["image"]["format"] != upload.image_format:
                response.failure(f"sent {upload.image_format}, gateway read {body['image']}")

    @tag("predict", "jpeg")
    @task(6)
    def predict_jpeg(self) -> None:
        self._predict("jpeg")

    @tag("predict", "png")
    @task(2)
    def predict_png(self) -> None:
        self._predict("png")

    @tag("predict", "dicom")
    @task(2)
    def predict_dicom(self) -> None:
        self._predict("dicom")

    @tag("predict", "explain")
    @task(1)
    def predict_with_activation_map(self) -> None:
        self._predict(random.choice(["jpeg", "dicom"]), explain=True)

    @tag("model")
    @task(1)
    def model_card(self) -> None:
        with self.client.get(MODEL, headers=self.auth, catch_response=True) as response:
            if response.status_code != 200 or "classes" not in response.text:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class CarelessClient(GatewayUser):
    """Sends what the gateway must refuse; the documented refusal is the expected answer."""

    weight = 1
    wait_time = between(1.0, 3.0)

    @tag("bad-input")
    @task(5)
    def bad_upload(self) -> None:
        bad, form = random.choice(Corpus.bad)
        headers = {**self.auth, "Content-Type": form.content_type}
        with self.client.post(
            PREDICT, data=form.body, headers=headers, name=f"{PREDICT} [bad: {bad.code}]",
            catch_response=True,
        ) as response:  # fmt: skip
            code = _error_code(response.text)
            if (response.status_code, code) == (bad.status, bad.code):
                response.success()
            else:
                response.failure(
                    f"expected {bad.status} {bad.code}, got {response.status_code} {code}"
                )

    @tag("bad-input")
    @task(1)
    def not_multipart(self) -> None:
        with self.client.post(
            PREDICT, data=b"\x89PNG...", headers={**self.auth, "Content-Type": "image/png"},
            name=f"{PREDICT} [bad: missing_file]", catch_response=True,
        ) as response:  # fmt: skip
            if (response.status_code, _error_code(response.text)) == (422, "missing_file"):
                response.success()
            else:
                response.failure(f"expected 422 missing_file, got {response.status_code}")


def _error_code(text: str) -> str | None:
    try:
        return json.loads(text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
