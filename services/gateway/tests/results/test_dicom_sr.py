"""POST /api/v1/predictions answered as a DICOM SR (TID 1500), over real HTTP with real inference.

Each SR is read back with pydicom and highdicom and compared with the JSON answer the same
upload gets: the two are made from the same PredictionResult.
"""

from __future__ import annotations

import io
import logging
import shutil
import time

import highdicom as hd
import httpx
import pydicom
import pytest
import structlog
from brainscan_gateway.imaging.frames import FrameChoice
from brainscan_gateway.imaging.upload_format import UploadFormat
from brainscan_gateway.prediction.distribution_check import DistributionCheck
from brainscan_gateway.prediction.predictor import PredictionResult, PredictionTimings
from brainscan_gateway.results import dicom_sr
from brainscan_inference.app import create_app as create_inference
from brainscan_testsupport.dicoms import (
    PATIENT_BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    mr_dataset,
    mr_slice,
    to_bytes,
)
from gateway_dicoms import enhanced_mr, numbered_frames
from gateway_images import png_bytes
from gateway_servers import MODEL_NAME, RunningServer, inference_settings, write_package
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage, generate_uid

DICOM = "application/dicom"


def with_uids(ds: Dataset) -> Dataset:
    """``ds`` with what every real DICOM image has and brainscan_testsupport leaves out."""
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientSex = "F"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-4711"
    ds.StudyID = "S1"
    ds.Manufacturer = "Scanner Co"
    return ds


def source(size: int = 96) -> Dataset:
    return with_uids(mr_dataset(mr_slice(size)))


def post(http: httpx.Client, data: bytes, accept: str | None = None, **params) -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    return http.post(
        "/api/v1/predictions", files={"file": ("a.dcm", data)}, params=params, headers=headers
    )


def read_sr(response: httpx.Response) -> tuple[Dataset, hd.sr.Comprehensive3DSR]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DICOM
    dataset = pydicom.dcmread(io.BytesIO(response.content))
    return dataset, hd.sr.srread(io.BytesIO(response.content))


def measurement_group(sr: hd.sr.Comprehensive3DSR) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    groups = sr.content.get_image_measurement_groups()
    assert len(groups) == 1
    return groups[0]


def evaluations(group) -> dict[str, str]:
    return {item.name.meaning: item.value.meaning for item in group.get_qualitative_evaluations()}


def device_observer(sr: hd.sr.Comprehensive3DSR) -> hd.sr.DeviceObserverIdentifyingAttributes:
    contexts = sr.content.get_observer_contexts(observer_type=codes.DCM.Device)
    assert len(contexts) == 1
    return contexts[0].observer_identifying_attributes


def algorithm(sr: hd.sr.Comprehensive3DSR) -> tuple[str, str]:
    """The Algorithm Name and Version (TID 4019) of the measurement group."""
    group = measurement_group(sr)[0]
    found = {}
    for name in (codes.DCM.AlgorithmName, codes.DCM.AlgorithmVersion):
        [item] = hd.sr.utils.find_content_items(group, name=name)
        found[name.meaning] = item.TextValue
    return found["Algorithm Name"], found["Algorithm Version"]


def frame_numbers(image) -> list[int]:
    value = image.ReferencedSOPSequence[0].ReferencedFrameNumber
    return [int(v) for v in value] if isinstance(value, MultiValue) else [int(value)]


def brainscan_equipment(dataset: Dataset) -> Dataset:
    items = [i for i in dataset.ContributingEquipmentSequence if i.Manufacturer == "brainscan"]
    assert len(items) == 1
    return items[0]


def test_sr_validates_and_says_what_the_json_answer_says(http):
    ds = source()
    data = to_bytes(ds)
    answer = post(http, data).json()  # JSON stays the default
    dataset, sr = read_sr(post(http, data, accept=DICOM))

    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    assert dataset.SOPClassUID == Comprehensive3DSRStorage
    assert dataset.file_meta.MediaStorageSOPClassUID == Comprehensive3DSRStorage
    assert dataset.Modality == "SR"
    # The SR joins the source's study in a series of its own.
    assert dataset.StudyInstanceUID == ds.StudyInstanceUID
    assert dataset.SeriesInstanceUID not in (ds.SeriesInstanceUID, "")
    assert dataset.SOPInstanceUID != ds.SOPInstanceUID
    assert dataset.VerificationFlag == "UNVERIFIED"
    assert dataset.CompletionFlag == "COMPLETE"
    assert dataset.PreliminaryFlag == "PRELIMINARY"
    assert "NOT FOR DIAGNOSTIC USE" in dataset.SeriesDescription
    template = dataset.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "1500")
    assert dataset.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report
    # Patient and study attributes are the source's, as DICOM asks of the same study.
    assert str(dataset.PatientName) == PATIENT_NAME
    assert dataset.PatientID == PATIENT_ID
    assert dataset.PatientBirthDate == PATIENT_BIRTH_DATE
    assert dataset.PatientSex == "F"
    assert dataset.AccessionNumber == "ACC-4711"
    assert dataset.StudyDate == "20240102"

    group = measurement_group(sr)
    finding = group.finding_type
    expected = dicom_sr.FINDING_CODES[answer["label"]]
    assert finding.value == expected.value
    assert finding.scheme_designator == expected.scheme_designator == "99BRAINSCAN"
    [probability] = group.get_measurements(name=codes.DCM.Probability)
    assert probability.value == answer["confidence"]
    assert probability.unit.value == "1" and probability.unit.scheme_designator == "UCUM"
    flags = evaluations(group)
    assert flags[dicom_sr.UNCERTAIN.meaning] == ("Yes" if answer["uncertain"] else "No")
    # The tiny model carries no out-of-distribution guard: JSON says null, the SR "not checked".
    assert answer["in_distribution"] is None
    assert flags[dicom_sr.OUT_OF_DISTRIBUTION.meaning] == dicom_sr.NOT_CHECKED.meaning

    model = answer["model"]
    observer = device_observer(sr)
    assert observer.name == observer.model_name == model["name"] == MODEL_NAME
    assert observer.serial_number == model["version"] == "1"
    assert observer.manufacturer_name == "brainscan"
    assert observer.uid == dicom_sr.device_uid(model["name"], model["version"])
    assert algorithm(sr) == (model["name"], model["version"])
    equipment = brainscan_equipment(dataset)
    assert equipment.ManufacturerModelName == model["name"]
    assert equipment.SoftwareVersions == model["version"]
    assert equipment.DeviceUID == observer.uid
    assert equipment.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"

    # The source instance, with its series and study.
    [image] = group.source_images
    assert image.referenced_sop_instance_uid == ds.SOPInstanceUID
    assert image.referenced_sop_class_uid == ds.SOPClassUID
    [study] = dataset.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == ds.StudyInstanceUID
    [series] = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == ds.SeriesInstanceUID
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID


def test_the_sr_series_is_one_per_source_series_and_model_version(http):
    ds = source()
    first, _ = read_sr(post(http, to_bytes(ds), accept=DICOM))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    second, _ = read_sr(post(http, to_bytes(ds), accept=DICOM))
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID


@pytest.mark.parametrize(
    ("accept", "params", "sr"),
    [
        (None, {}, False),
        ("application/json", {}, False),
        ("*/*", {}, False),
        (DICOM, {}, True),
        ("application/json;q=0.5, application/dicom", {}, True),
        ("application/dicom;q=0.5, application/json", {}, False),
        (None, {"result": "dicom-sr"}, True),
        ("application/json", {"result": "dicom-sr"}, True),
        (DICOM, {"result": "json"}, False),
        # explain and preview belong to the JSON answer: with the SR they are not made.
        (DICOM, {"explain": "true", "preview": "true"}, True),
    ],
)
def test_accept_header_and_result_parameter_choose_the_answer(http, accept, params, sr):
    response = post(http, to_bytes(source()), accept=accept, **params)
    assert response.status_code == 200, response.text
    if sr:
        read_sr(response)
    else:
        assert response.headers["content-type"] == "application/json"
        assert response.json()["label"]


def test_unknown_result_value_is_422(http):
    response = post(http, to_bytes(source()), result="dicom")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("how", [{"accept": DICOM}, {"result": "dicom-sr"}])
def test_an_sr_of_a_jpeg_or_png_is_refused_saying_it_needs_dicom(http, how):
    response = post(http, png_bytes(96), **how)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "sr_needs_dicom"
    assert "needs a DICOM upload" in error["message"]


def test_a_dicom_without_study_or_series_uid_gets_no_sr(http):
    response = post(http, to_bytes(mr_dataset(mr_slice(96))), accept=DICOM)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "dicom_source_incomplete"
    assert "StudyInstanceUID, SeriesInstanceUID" in error["message"]
    assert PATIENT_NAME not in error["message"] and PATIENT_ID not in error["message"]
    # The JSON answer needs no UIDs.
    assert post(http, to_bytes(mr_dataset(mr_slice(96)))).status_code == 200


def test_multi_frame_sr_refers_to_the_frame_classified(http):
    ds = with_uids(enhanced_mr(numbered_frames(5), 1.0, 0.0, [(1500.0, 600.0)] * 5))
    data = to_bytes(ds)
    for params, frame in (({}, 3), ({"frame": "2"}, 2)):
        answer = post(http, data, **params).json()
        assert answer["frame"] == {"index": frame, "count": 5}
        _, sr = read_sr(post(http, data, accept=DICOM, **params))
        [image] = measurement_group(sr).source_images
        assert image.referenced_sop_instance_uid == ds.SOPInstanceUID
        assert frame_numbers(image) == [frame]


def test_the_sr_names_the_new_model_version_after_a_swap(tmp_path, start_gateway):
    models = tmp_path / "models"
    write_package(models / "1")
    inference = RunningServer(lambda: create_inference(inference_settings(models))).start()
    try:
        inference.wait_until("/v2/health/ready")
        gateway = start_gateway(inference.url, manifest_refresh_seconds=0)
        data = to_bytes(source())
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            before, before_sr = read_sr(post(http, data, accept=DICOM))
            staging = tmp_path / "staging"
            write_package(staging, seed=7)
            shutil.move(staging, models / "2")  # appears whole
            deadline = time.monotonic() + 30
            while post(http, data).json()["model"]["version"] != "2":
                assert time.monotonic() < deadline, "inference never served version 2"
                time.sleep(0.1)
            after, after_sr = read_sr(post(http, data, accept=DICOM))
    finally:
        inference.stop()
    old, new = device_observer(before_sr), device_observer(after_sr)
    assert (old.serial_number, new.serial_number) == ("1", "2")
    assert old.name == new.name == MODEL_NAME
    assert old.uid != new.uid and new.uid == dicom_sr.device_uid(MODEL_NAME, "2")
    assert brainscan_equipment(after).SoftwareVersions == "2"
    assert algorithm(before_sr) == (MODEL_NAME, "1") and algorithm(after_sr) == (MODEL_NAME, "2")
    assert before.SeriesInstanceUID != after.SeriesInstanceUID  # a series per model version
    assert before.StudyInstanceUID == after.StudyInstanceUID


def test_no_patient_attribute_in_logs_on_the_sr_path(inference, start_gateway, caplog, capfd):
    gateway = start_gateway(inference.url, log_level="INFO")
    caplog.set_level(logging.DEBUG)
    with (
        structlog.testing.capture_logs() as events,
        httpx.Client(base_url=gateway.url, timeout=30) as http,
    ):
        ds = source()
        answered = post(http, to_bytes(ds), accept=DICOM)
        series = with_uids(enhanced_mr(numbered_frames(3), 1.0, 0.0, [(1500.0, 600.0)] * 3))
        framed = post(http, to_bytes(series), accept=DICOM, frame="1")
        incomplete = post(http, to_bytes(mr_dataset(mr_slice(96))), result="dicom-sr")
        not_dicom = post(http, png_bytes(96), accept=DICOM)
    assert [answered.status_code, framed.status_code] == [200, 200]
    assert [incomplete.status_code, not_dicom.status_code] == [422, 422]
    assert PATIENT_NAME in answered.content.decode("latin-1")  # it is in the SR, as it must be
    srs = [e for e in events if e["event"] == "dicom sr"]
    assert len(srs) == 2 and srs[0]["model.version"] == "1"
    refusals = [e["error.code"] for e in events if e["event"] == "request refused"]
    assert refusals == ["dicom_source_incomplete", "sr_needs_dicom"]
    captured = capfd.readouterr()
    for text in (repr(events), caplog.text, captured.out, captured.err):
        assert PATIENT_NAME not in text and PATIENT_ID not in text and "Doe" not in text
        assert PATIENT_BIRTH_DATE not in text and "ACC-4711" not in text
        # Nor the source's UIDs, which would tie a log line to a study.
        assert ds.StudyInstanceUID not in text and ds.SOPInstanceUID not in text


# --- the builder on its own: what the real stack cannot easily produce --------------------------


def result(**overrides) -> PredictionResult:
    values = {
        "label": "meningioma",
        "confidence": 0.1234567890123456789,
        "uncertain": True,
        "threshold": 0.5,
        "assessed": False,
        "check": DistributionCheck(False, 2.0, 1.0, "texture"),
        "probabilities": {"meningioma": 0.1234567890123456789},
        "model_name": "brainscan-mobilenetv2",
        "model_version": "7",
        "model_role": "production",
        "source_format": UploadFormat.DICOM,
        "size": (96, 96),
        "timings": PredictionTimings(0.0, 0.0, 0.0, 0.0),
    }
    values.update(overrides)
    return PredictionResult(**values)


def built(prediction: PredictionResult, ds: Dataset | None = None) -> hd.sr.Comprehensive3DSR:
    data = to_bytes(ds if ds is not None else source())
    body = dicom_sr.build_sr(prediction, dicom_sr.sr_source(data), "test series")
    return hd.sr.srread(io.BytesIO(body))


def test_out_of_distribution_is_flagged_and_the_probability_kept_exactly():
    sr = built(result())
    group = measurement_group(sr)
    flags = evaluations(group)
    assert flags[dicom_sr.OUT_OF_DISTRIBUTION.meaning] == "Yes"
    assert flags[dicom_sr.UNCERTAIN.meaning] == "Yes"
    assert group.get_measurements()[0].value == 0.1234567890123456789  # FD beside the DS
    assert group.finding_type.value == "MENINGIOMA"
    in_distribution = measurement_group(built(result(check=DistributionCheck(True))))
    assert evaluations(in_distribution)[dicom_sr.OUT_OF_DISTRIBUTION.meaning] == "No"


def test_a_class_outside_the_table_is_coded_privately_by_its_name():
    assert dicom_sr.finding_code("oedema") == pydicom.sr.coding.Code(
        "OEDEMA", dicom_sr.SCHEME, "oedema"
    )
    long = dicom_sr.finding_code("a class name longer than sixteen")
    assert len(long.value) == 16 and long.scheme_designator == "99BRAINSCAN"
    sr = built(result(label="oedema"))
    assert measurement_group(sr).finding_type.value == "OEDEMA"


def test_the_frame_reference_comes_from_the_result():
    ds = with_uids(enhanced_mr(numbered_frames(4), 1.0, 0.0, [(1500.0, 600.0)] * 4))
    sr = built(result(frame=FrameChoice(4, 4)), ds)
    [image] = measurement_group(sr).source_images
    assert frame_numbers(image) == [4]


def test_device_uid_is_deterministic_and_differs_per_version():
    assert dicom_sr.device_uid("m", "1") == dicom_sr.device_uid("m", "1")
    assert dicom_sr.device_uid("m", "1") != dicom_sr.device_uid("m", "2")
    assert dicom_sr.device_uid("m", "1") != dicom_sr.device_uid("n", "1")


@pytest.mark.parametrize(
    ("accept", "result_param", "expected"),
    [
        (None, None, False),
        ("", None, False),
        ("application/*", None, False),
        ("application/dicom;q=0", None, False),
        ("application/dicom, */*;q=0.1", None, True),
        ("text/html, application/dicom;q=0.9", None, True),
        ("application/json, application/dicom", None, False),  # a tie: JSON
        ("application/dicom;q=abc", None, False),
        (None, "dicom-sr", True),
        ("application/dicom", "json", False),
    ],
)
def test_wants_sr(accept, result_param, expected):
    assert dicom_sr.wants_sr(accept, result_param) is expected


def test_series_description_is_a_setting():
    from brainscan_gateway.settings import GatewaySettings

    assert "NOT FOR DIAGNOSTIC USE" in GatewaySettings().sr_series_description
    with pytest.raises(ValueError):
        GatewaySettings(sr_series_description="x" * 65)
    with pytest.raises(ValueError):
        GatewaySettings(sr_series_description="a\\b")
    assert GatewaySettings(sr_series_description="Research").sr_series_description == "Research"
