// brainscan page: upload one image, show the prediction, bars, badge and activation map.
// No framework and no external resource: the page works offline and under a strict CSP.
"use strict";

(function () {
  const KEY_STORAGE = "brainscan.apiKey";
  const byId = (id) => document.getElementById(id);
  const el = {
    modelLine: byId("model-line"),
    shadowLine: byId("shadow-line"),
    drop: byId("drop-zone"),
    file: byId("file-input"),
    keyPanel: byId("key-panel"),
    key: byId("api-key"),
    showMap: byId("show-map"),
    status: byId("status"),
    error: byId("error"),
    figure: byId("preview-figure"),
    preview: byId("preview"),
    caption: byId("preview-caption"),
    prediction: byId("prediction"),
    label: byId("label"),
    confidence: byId("confidence"),
    uncertain: byId("uncertain-badge"),
    certain: byId("certain-badge"),
    bars: byId("bars"),
    details: byId("details"),
    notAssessed: byId("not-assessed"),
    notAssessedReason: byId("not-assessed-reason"),
    oodUnavailable: byId("ood-unavailable"),
    feedback: byId("feedback"),
    feedbackConfirm: byId("feedback-confirm"),
    feedbackModelLabel: byId("feedback-model-label"),
    feedbackLabel: byId("feedback-label"),
    feedbackComment: byId("feedback-comment"),
    feedbackSend: byId("feedback-send"),
    feedbackStatus: byId("feedback-status"),
  };

  const state = {
    model: null, imageUrl: null, overlayUrl: null, objectUrl: null, busy: false, answer: null,
  };

  const percent = (p) => (100 * p).toFixed(1) + " %";
  const label = (name) => name.replace(/[_-]+/g, " ");

  // Words for each error code; the server's message follows with the details.
  const ERROR_WORDS = {
    empty_file: "The file is empty.",
    missing_file: "No file was sent.",
    unsupported_format: "This file is not an image the service can read.",
    corrupt_image: "The image is damaged or incomplete.",
    too_many_pixels: "The image is too large (too many pixels).",
    image_too_small: "The image is too small to classify.",
    upload_too_large: "The file is too large to upload.",
    dicom_no_pixel_data: "The DICOM file contains no image.",
    frame_out_of_range: "The file has no frame with that number.",
    dicom_unsupported: "This kind of DICOM file is not supported.",
    api_key_missing: "This server needs an API key.",
    api_key_invalid: "The API key was not accepted.",
    rate_limited: "Too many requests in a short time.",
    model_not_ready: "No model is ready yet.",
    inference_unavailable: "The analysis service is unavailable at the moment.",
    inference_timeout: "The analysis took too long.",
    inference_error: "The analysis service failed.",
    explanation_unavailable: "This model cannot show activation maps.",
    feedback_disabled: "This server does not take reviews.",
    prediction_unknown: "This answer is not known to the server any more.",
    prediction_expired: "This answer is too old for a review.",
    feedback_exists: "This answer was already reviewed.",
    unknown_label: "That class is not one of the model's.",
    feedback_not_stored: "The review could not be stored.",
  };

  function apiHeaders() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    return key ? { "X-API-Key": key } : {};
  }

  function showKeyPanel() {
    el.keyPanel.hidden = false;
    el.key.value = sessionStorage.getItem(KEY_STORAGE) || "";
  }

  function setStatus(text) {
    el.status.textContent = text;
  }

  function showError(title, detail, requestId) {
    el.error.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = title;
    el.error.append(strong);
    if (detail) {
      const p = document.createElement("p");
      p.textContent = detail.charAt(0).toUpperCase() + detail.slice(1) + ".";
      el.error.append(p);
    }
    if (requestId) {
      const small = document.createElement("p");
      small.className = "request-id";
      small.textContent = "Reference: " + requestId;
      el.error.append(small);
    }
    el.error.hidden = false;
  }

  function clearResult() {
    el.error.hidden = true;
    el.prediction.hidden = true;
    el.notAssessed.hidden = true;
    el.oodUnavailable.hidden = true;
    el.uncertain.hidden = true;
    el.certain.hidden = true;
    el.bars.replaceChildren();
    el.details.textContent = "";
    state.overlayUrl = null;
    el.showMap.disabled = true;
    state.answer = null;
    el.feedback.hidden = true;
  }

  async function readError(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (_) {
      /* not JSON: fall through */
    }
    return { code: "http_" + response.status, message: response.statusText, request_id: "" };
  }

  async function loadModel() {
    try {
      const response = await fetch("/api/v1/model", { headers: apiHeaders() });
      if (!response.ok) {
        const error = await readError(response);
        if (response.status === 401) showKeyPanel();
        el.modelLine.textContent = "Model: " + (ERROR_WORDS[error.code] || error.message);
        return;
      }
      state.model = await response.json();
      const m = state.model;
      el.modelLine.textContent =
        "Model " + m.name + " · version " + (m.version || "unversioned") +
        " · classes: " + m.classes.map(label).join(", ") +
        (m.ood && m.ood.available ? "" : " · out-of-distribution check unavailable");
      el.showMap.parentElement.hidden = !m.explain_available;
      renderShadow(m.shadow);
    } catch (_) {
      el.modelLine.textContent = "Model: the server cannot be reached.";
    }
  }

  // For operators: the challenger in shadow and how often it agreed with the served model.
  function renderShadow(shadow) {
    el.shadowLine.hidden = !shadow;
    if (!shadow) return;
    const agreement = shadow.agreement === null ? "no comparison yet"
      : "agreed on " + Math.round(100 * shadow.agreement) + " % of " + shadow.mirrored +
        " mirrored predictions";
    el.shadowLine.textContent =
      "For operators: challenger version " + shadow.version + " in shadow (never shown) · " +
      agreement + (shadow.dropped ? " · " + shadow.dropped + " dropped under load" : "") +
      (shadow.failed ? " · " + shadow.failed + " failed" : "");
  }

  function browserCanShow(file) {
    return file.type === "image/jpeg" || file.type === "image/png";
  }

  function showPreview(url, caption) {
    el.preview.src = url;
    el.preview.alt = caption;
    el.caption.textContent = caption;
    el.figure.hidden = false;
  }

  function renderBars(probabilities, predicted) {
    el.bars.replaceChildren();
    for (const [name, p] of Object.entries(probabilities)) {
      const item = document.createElement("li");
      if (name === predicted) item.className = "predicted";
      const nameSpan = document.createElement("span");
      nameSpan.className = "bar-name";
      nameSpan.textContent = label(name);
      const track = document.createElement("span");
      track.className = "bar-track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "bar-fill";
      fill.style.width = Math.max(0, Math.min(100, 100 * p)).toFixed(1) + "%";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = percent(p);
      item.append(nameSpan, track, value);
      el.bars.append(item);
    }
  }

  // An image the model was not trained for gets no finding: the label stays in the JSON for
  // audit, the page shows why it was not assessed instead.
  function renderNotAssessed(body, fileName) {
    const reason = body.ood.reason;
    const why = reason.indexOf(": ", reason.indexOf("trained on")) + 2;
    el.notAssessedReason.textContent =
      "Why: " + reason.slice(why) + ". Model " + body.model.name + " version " +
      (body.model.version || "unversioned") + " · reference " + body.request_id;
    el.notAssessed.hidden = false;
    if (body.preview_png) {
      state.imageUrl = "data:image/png;base64," + body.preview_png;
      showPreview(state.imageUrl, "Preview of " + fileName + " as rendered by the server");
    }
    setStatus("Result for " + fileName + ": not assessed, the image does not look like the " +
      "images this model was trained on.");
  }

  function renderPrediction(body, fileName) {
    if (body.in_distribution === false) {
      renderNotAssessed(body, fileName);
      return;
    }
    el.oodUnavailable.hidden = body.in_distribution !== null;
    el.label.textContent = label(body.label);
    el.confidence.textContent = "(" + percent(body.confidence) + ")";
    el.uncertain.hidden = !body.uncertain;
    el.certain.hidden = body.uncertain;
    if (body.uncertain) {
      el.uncertain.textContent =
        "Uncertain — review manually (confidence below the " +
        percent(body.threshold) + " threshold)";
    }
    renderBars(body.probabilities, body.label);
    el.details.textContent =
      "Model " + body.model.name + " version " + (body.model.version || "unversioned") +
      " · " + Math.round(body.timings.total_ms) + " ms · reference " + body.request_id;
    el.prediction.hidden = false;
    renderFeedback(body);

    if (body.preview_png) {
      state.imageUrl = "data:image/png;base64," + body.preview_png;
      showPreview(state.imageUrl, "Preview of " + fileName + " as rendered by the server");
    }
    if (body.activation_map) {
      state.overlayUrl = "data:image/png;base64," + body.activation_map.overlay_png;
      el.showMap.disabled = false;
      if (el.showMap.checked) applyOverlayToggle();
    }
    setStatus(
      "Result for " + fileName + ": " + label(body.label) + ", " + percent(body.confidence) +
      (body.uncertain ? ". Uncertain, review manually." : ".")
    );
  }

  // A reviewer confirms the answer or picks the right class; the server keeps the image then.
  function renderFeedback(body) {
    const feedback = state.model && state.model.feedback;
    if (!feedback || !feedback.enabled) return;
    state.answer = body;
    el.feedbackModelLabel.textContent = label(body.label);
    el.feedbackLabel.replaceChildren();
    for (const name of Object.keys(body.probabilities)) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = label(name) + (name === body.label ? " (the model's answer)" : "");
      option.selected = name === body.label;
      el.feedbackLabel.append(option);
    }
    el.feedbackComment.value = "";
    el.feedbackStatus.textContent = "";
    setFeedbackEnabled(true);
    el.feedback.hidden = false;
  }

  function setFeedbackEnabled(enabled) {
    for (const control of [el.feedbackConfirm, el.feedbackLabel, el.feedbackComment,
      el.feedbackSend]) {
      control.disabled = !enabled;
    }
  }

  async function sendFeedback(chosen) {
    const answer = state.answer;
    if (!answer) return;
    setFeedbackEnabled(false);
    el.feedbackStatus.textContent = "Sending your review…";
    const body = { label: chosen };
    const comment = el.feedbackComment.value.trim();
    if (comment) body.comment = comment;
    try {
      const response = await fetch(
        "/api/v1/predictions/" + encodeURIComponent(answer.request_id) + "/feedback", {
          method: "POST",
          body: JSON.stringify(body),
          headers: Object.assign({ "Content-Type": "application/json" }, apiHeaders()),
        });
      if (response.ok) {
        const receipt = await response.json();
        el.feedbackStatus.textContent = receipt.confirmation
          ? "Thank you: you confirmed " + label(receipt.model_label) + "."
          : "Thank you: recorded as " + label(receipt.label) + " (the model said " +
            label(receipt.model_label) + ").";
        return; // one review per answer: the form stays disabled
      }
      const error = await readError(response);
      if (response.status === 401) showKeyPanel();
      el.feedbackStatus.textContent = (ERROR_WORDS[error.code] || "The review was not sent.") +
        " " + error.message.charAt(0).toUpperCase() + error.message.slice(1) + ".";
      // Worth another try only when nothing was wrong with the review itself.
      if (response.status === 401 || response.status === 429 || response.status >= 500) {
        setFeedbackEnabled(true);
      }
    } catch (_) {
      el.feedbackStatus.textContent = "The server cannot be reached: try again.";
      setFeedbackEnabled(true);
    }
  }

  function applyOverlayToggle() {
    if (el.showMap.checked && state.overlayUrl) {
      showPreview(state.overlayUrl, "Activation map for " + el.label.textContent +
        " over the image: warm colours mark the strongest evidence");
    } else if (state.imageUrl) {
      showPreview(state.imageUrl, "The image analysed");
    }
  }

  async function analyse(file) {
    if (state.busy) return;
    state.busy = true;
    clearResult();
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = null;
    state.imageUrl = null;
    el.figure.hidden = true;

    const localPreview = browserCanShow(file);
    if (localPreview) {
      state.objectUrl = URL.createObjectURL(file);
      state.imageUrl = state.objectUrl;
      showPreview(state.imageUrl, "The image analysed: " + file.name);
    }
    setStatus("Analysing " + file.name + "…");

    const params = new URLSearchParams();
    if (state.model && state.model.explain_available) params.set("explain", "true");
    if (!localPreview) params.set("preview", "true");
    const form = new FormData();
    form.append("file", file, file.name);

    try {
      const response = await fetch("/api/v1/predictions?" + params, {
        method: "POST",
        body: form,
        headers: apiHeaders(),
      });
      if (response.ok) {
        renderPrediction(await response.json(), file.name);
        loadModel(); // the version may have moved, and the shadow figures have
      } else {
        const error = await readError(response);
        if (response.status === 401) showKeyPanel();
        el.figure.hidden = true; // a file the service cannot read is not shown as an image
        let detail = error.message;
        const retry = response.headers.get("Retry-After");
        if (retry) detail += " (try again in " + retry + " s)";
        showError(ERROR_WORDS[error.code] || "The image could not be analysed.", detail,
          error.request_id);
        setStatus("No result for " + file.name + ".");
      }
    } catch (_) {
      el.figure.hidden = true;
      showError("The server cannot be reached.", "check the connection and try again", "");
      setStatus("No result for " + file.name + ".");
    } finally {
      state.busy = false;
    }
  }

  // --- wiring ----------------------------------------------------------------------------
  el.file.addEventListener("change", () => {
    if (el.file.files.length) analyse(el.file.files[0]);
    el.file.value = ""; // choosing the same file again analyses it again
  });

  for (const type of ["dragenter", "dragover"]) {
    el.drop.addEventListener(type, (event) => {
      event.preventDefault();
      el.drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    el.drop.addEventListener(type, () => el.drop.classList.remove("dragging"));
  }
  el.drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) return;
    if (files.length > 1) {
      showError("Please drop one file at a time.", "", "");
      return;
    }
    analyse(files[0]);
  });

  el.showMap.addEventListener("change", applyOverlayToggle);
  el.feedbackConfirm.addEventListener("click", () => {
    if (state.answer) sendFeedback(state.answer.label);
  });
  el.feedback.addEventListener("submit", (event) => {
    event.preventDefault();
    sendFeedback(el.feedbackLabel.value);
  });
  // A file the browser cannot draw (e.g. a renamed text file) leaves no broken image behind.
  el.preview.addEventListener("error", () => {
    el.figure.hidden = true;
  });

  el.key.addEventListener("change", () => {
    const key = el.key.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    loadModel();
  });

  loadModel();
})();
