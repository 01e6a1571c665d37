"""The web page in a real headless Chromium (Debian's), driven by Playwright, over real HTTP.

Skipped only when /usr/bin/chromium is missing (`apt-get install -y chromium`); Playwright's
own browser downloads are never used. Screenshots are kept in reports/gateway/ as artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from brainscan_testsupport.dicoms import mr_dataset, mr_slice, to_bytes
from gateway_images import encode, mri_like
from gateway_servers import RunningServer, gateway_settings
from gateway_shadow import eventually, shadow_of
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORTS = Path(__file__).resolve().parents[4] / "reports" / "gateway"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


@pytest.fixture(scope="module")
def page_gateway(inference) -> Iterator[RunningServer]:
    """A gateway whose thresholds are high enough that the uncertain badge shows."""
    from brainscan_gateway.app import create_app

    settings = gateway_settings(inference.url, default_threshold=0.99)
    server = RunningServer(lambda: create_app(settings)).start()
    try:
        server.wait_until("/readyz")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, page_gateway):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.requests_seen = []
    page.csp_errors = []
    page.on("request", lambda request: page.requests_seen.append(request.url))
    page.on(
        "console",
        lambda message: (
            page.csp_errors.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(page_gateway.url + "/")
    # Locator assertions, not wait_for_function: the page's CSP (rightly) forbids eval.
    expect(page.locator("#model-line")).to_contain_text("version 1")
    yield page
    context.close()


def screenshot(page, name: str, tmp_path: Path) -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    (tmp_path / path.name).write_bytes(path.read_bytes())
    return path


def mri_png(tmp_path: Path) -> Path:
    path = tmp_path / "slice.png"
    path.write_bytes(encode(Image.fromarray(mri_like(256)), "PNG"))
    return path


def test_upload_shows_label_bars_badge_and_activation_map(page, page_gateway, tmp_path):
    assert "tiny-brainscan" in page.text_content("#model-line")
    # The file input is reachable by its label (accessible name), like a screen reader finds it.
    page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
    page.wait_for_selector("#prediction:not([hidden])")

    label = page.text_content("#label").strip()
    assert label in {"glioma", "meningioma", "notumor", "pituitary"}
    bars = page.locator("#bars li")
    assert bars.count() == 4
    assert [bars.nth(i).locator(".bar-name").text_content() for i in range(4)] == [
        "glioma",
        "meningioma",
        "notumor",
        "pituitary",
    ]
    assert page.is_visible("#uncertain-badge")
    assert "review manually" in page.text_content("#uncertain-badge")
    assert "Result for slice.png" in page.text_content("#status")
    assert "version 1" in page.text_content("#details")
    assert page.get_attribute("#preview", "src").startswith("blob:")

    # Keyboard only: focus the toggle and press space to show the activation map.
    page.focus("#show-map")
    page.keyboard.press("Space")
    assert page.is_checked("#show-map")
    assert page.get_attribute("#preview", "src").startswith("data:image/png;base64,")
    assert "Activation map" in page.text_content("#preview-caption")
    path = screenshot(page, "page-prediction", tmp_path)
    assert path.stat().st_size > 10_000

    page.keyboard.press("Space")
    assert page.get_attribute("#preview", "src").startswith("blob:")
    # Everything the page loaded came from the gateway itself (no CDN), under its CSP.
    external = [
        url
        for url in page.requests_seen
        if not url.startswith((page_gateway.url, "data:", "blob:"))
    ]
    assert external == []
    assert page.csp_errors == []


def test_text_file_named_jpg_shows_the_error_in_words(page, tmp_path):
    notes = tmp_path / "scan.jpg"
    notes.write_text("Clinical notes, not an image.\n")
    page.set_input_files("#file-input", str(notes))
    page.wait_for_selector("#error:not([hidden])")
    error = page.text_content("#error")
    assert "not an image the service can read" in error
    assert "a text file" in error
    assert "Reference:" in error
    assert page.is_hidden("#prediction")
    assert page.is_hidden("#preview-figure")  # no broken image left on the page
    screenshot(page, "page-error", tmp_path)


def test_dicom_shows_the_servers_preview(page, tmp_path):
    dicom = tmp_path / "slice.dcm"
    dicom.write_bytes(to_bytes(mr_dataset(mr_slice(128))))
    page.set_input_files("#file-input", str(dicom))
    page.wait_for_selector("#prediction:not([hidden])")
    assert page.get_attribute("#preview", "src").startswith("data:image/png;base64,")
    assert "rendered by the server" in page.text_content("#preview-caption")
    screenshot(page, "page-dicom", tmp_path)


def test_api_key_is_asked_for_and_used(browser, inference, tmp_path):
    from brainscan_gateway.app import create_app
    from playwright.sync_api import expect

    settings = gateway_settings(inference.url, api_keys=["reading-room-7"])
    server = RunningServer(lambda: create_app(settings)).start()
    context = browser.new_context()
    try:
        server.wait_until("/healthz")
        page = context.new_page()
        page.goto(server.url + "/")
        expect(page.locator("#model-line")).to_contain_text("needs an API key")
        key = page.get_by_label("API key")
        expect(key).to_be_visible()
        key.fill("reading-room-7")
        key.press("Enter")
        key.blur()  # "change" fires on commit
        expect(page.locator("#model-line")).to_contain_text("version 1")
        page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
        expect(page.locator("#prediction")).to_be_visible()
    finally:
        context.close()
        server.stop()


def test_unguarded_model_says_the_check_is_unavailable(page, tmp_path):
    """The shared tiny model carries no training reference: the page says so, not "fine"."""
    assert "out-of-distribution check unavailable" in page.text_content("#model-line")
    page.set_input_files("#file-input", str(mri_png(tmp_path)))
    page.wait_for_selector("#prediction:not([hidden])")
    assert page.is_visible("#ood-unavailable")
    assert "carries no training reference" in page.text_content("#ood-unavailable")


@pytest.fixture(scope="module")
def guarded_page_gateway(tmp_path_factory) -> Iterator[RunningServer]:
    """Inference serving the tiny model with a guard fitted on MRI-like slices, and a gateway."""
    from brainscan_gateway.app import create_app as create_gateway
    from brainscan_inference.app import create_app as create_inference
    from gateway_servers import inference_settings, write_package

    models = tmp_path_factory.mktemp("guarded-page")
    write_package(models / "1", guard=True)
    inference = RunningServer(lambda: create_inference(inference_settings(models))).start()
    gateway = None
    try:
        inference.wait_until("/v2/health/ready")
        gateway = RunningServer(lambda: create_gateway(gateway_settings(inference.url))).start()
        gateway.wait_until("/readyz")
        yield gateway
    finally:
        if gateway is not None:
            gateway.stop()
        inference.stop()


def test_an_image_unlike_the_training_ones_is_shown_as_not_assessed(
    browser, guarded_page_gateway, tmp_path
):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(guarded_page_gateway.url + "/")
        expect(page.locator("#model-line")).to_contain_text("version 1")
        assert "unavailable" not in page.text_content("#model-line")

        photo = tmp_path / "holiday.png"
        photo.write_bytes(encode(Image.new("RGB", (200, 150), (30, 160, 230)), "PNG"))
        page.get_by_label("Choose a file…").set_input_files(str(photo))
        expect(page.locator("#not-assessed")).to_be_visible()
        text = page.text_content("#not-assessed")
        assert (
            "Not assessed: this image does not look like the images this model was trained on"
            in " ".join(text.split())
        )
        assert "Why:" in page.text_content("#not-assessed-reason")
        # No finding is presented: neither the label nor the bars are on the page.
        assert page.is_hidden("#prediction")
        assert "not assessed" in page.text_content("#status")
        screenshot(page, "page-not-assessed", tmp_path)

        # The next, MRI-like upload is assessed again.
        page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
        expect(page.locator("#prediction")).to_be_visible()
        assert page.is_hidden("#not-assessed") and page.is_hidden("#ood-unavailable")
    finally:
        context.close()


def test_operators_see_the_challenger_in_shadow_and_its_agreement(browser, shadow_stack, tmp_path):
    """The footer shows the challenger and its figures, refreshed after each answer; the answer
    itself is the served version's."""
    from playwright.sync_api import expect

    gateway = shadow_stack.gateway()
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(gateway.url + "/")
        expect(page.locator("#model-line")).to_contain_text("version 1")
        assert page.is_hidden("#shadow-line")  # no challenger: nothing to say

        shadow_stack.challenge("2")
        eventually(lambda: shadow_of(gateway, "2"), "the gateway mirroring to version 2")
        page.reload()
        expect(page.locator("#shadow-line")).to_contain_text("challenger version 2 in shadow")
        expect(page.locator("#shadow-line")).to_contain_text("no comparison yet")

        page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
        expect(page.locator("#prediction")).to_be_visible()
        assert "version 1" in page.text_content("#prediction")
        eventually(lambda: shadow_of(gateway, "2")["mirrored"] == 1, "the upload compared")
        page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
        expect(page.locator("#shadow-line")).to_contain_text("mirrored predictions")
        screenshot(page, "page-shadow", tmp_path)
    finally:
        context.close()


def test_a_reviewer_corrects_the_answer_and_the_page_says_it_was_recorded(
    browser, inference, start_gateway, tmp_path
):
    import json

    from playwright.sync_api import expect

    store = tmp_path / "feedback"
    gateway = start_gateway(inference.url, feedback_dir=store)
    context = browser.new_context(viewport={"width": 1200, "height": 1100})
    page = context.new_page()
    csp_errors = []
    page.on("console", lambda m: "Content Security Policy" in m.text and csp_errors.append(m.text))
    try:
        page.goto(gateway.url + "/")
        expect(page.locator("#model-line")).to_contain_text("version 1")
        page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
        expect(page.locator("#feedback")).to_be_visible()
        model_label = page.text_content("#label").strip()
        select = page.get_by_label("The right class:")
        assert select.input_value() == model_label  # the model's answer is preselected
        other = next(
            n for n in ("glioma", "meningioma", "notumor", "pituitary") if n != model_label
        )
        select.select_option(other)
        page.get_by_label("Comment (optional; no names, IDs or dates)").fill("second opinion")
        page.get_by_role("button", name="Send review").click()
        expect(page.locator("#feedback-status")).to_contain_text("Thank you: recorded as")
        expect(page.locator("#feedback-send")).to_be_disabled()  # one review per answer
        screenshot(page, "page-feedback", tmp_path)
        [record] = [json.loads(p.read_text()) for p in store.glob("*.json")]
        assert record["label"] == other and record["model"]["label"] == model_label
        assert record["comment"] == "second opinion"

        # The next answer gets a fresh form; confirming is one click.
        page.get_by_label("Choose a file…").set_input_files(str(mri_png(tmp_path)))
        expect(page.locator("#feedback-send")).to_be_enabled()
        page.locator("#feedback-confirm").click()
        expect(page.locator("#feedback-status")).to_contain_text("Thank you: you confirmed")
        assert csp_errors == []
    finally:
        context.close()
