"""The round trip with a real PACS: Orthanc (Debian's, with its DICOMweb plugin) pushes a study
to the gateway's STOW-RS receiver and gets the SR back.

The flow is the STOW-RS forward (docs/gateway.md, "Wiring your own PACS"): an MR instance (and
a CT one of the same study, to be skipped) is stored in Orthanc through its REST API; Orthanc's
own DICOMweb client sends the study to the gateway (`POST /dicom-web/servers/brainscan/stow`,
the server declared in Orthanc's configuration, with the gateway's API key); the gateway
classifies the MR instance and stores its SR back in Orthanc with STOW-RS. The SR is then found
with QIDO-RS, retrieved with WADO-RS and read with pydicom and highdicom.

Orthanc missing is a failure, not a skip, as for the Prometheus tests: CI installs it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import highdicom as hd
import httpx
import pydicom
import pytest
from brainscan_gateway.app import create_app
from brainscan_gateway.dicomweb import multipart
from brainscan_gateway.results import dicom_sr
from brainscan_testsupport.dicoms import to_bytes
from gateway_dicomweb import instance
from gateway_orthanc import Orthanc, free_port
from gateway_servers import MODEL_NAME, RunningServer, gateway_settings
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

KEY = "orthanc-key"


@dataclass
class Pacs:
    orthanc: Orthanc
    rest: httpx.Client
    """Orthanc's REST API and DICOMweb root (``/dicom-web/...``)."""
    gateway: httpx.Client


@pytest.fixture
def pacs(tmp_path, inference) -> Iterator[Pacs]:
    """Orthanc and a gateway wired to each other; Orthanc is stopped whatever happens."""
    gateway_port = free_port()
    orthanc = Orthanc(
        tmp_path,
        servers={
            "brainscan": {
                "Url": f"http://127.0.0.1:{gateway_port}/dicomweb/",
                "HttpHeaders": {"X-API-Key": KEY},
            }
        },
    )
    settings = gateway_settings(inference.url, dicomweb_push_url=orthanc.dicomweb, api_keys=[KEY])
    gateway = RunningServer(lambda: create_app(settings), port=gateway_port)
    try:
        orthanc.start()
        gateway.start().wait_until("/readyz")
        with (
            httpx.Client(base_url=orthanc.url, timeout=120) as rest,
            httpx.Client(base_url=gateway.url, timeout=60, headers={"X-API-Key": KEY}) as api,
        ):
            yield Pacs(orthanc, rest, api)
    finally:
        gateway.stop()
        orthanc.stop()


def wado_instances(response: httpx.Response) -> list[pydicom.Dataset]:
    """The instances of a WADO-RS multipart/related answer."""
    assert response.status_code == 200, response.text
    boundary = multipart.boundary_of(response.headers["content-type"])
    parts = multipart.split(response.content, boundary, 100)
    return [pydicom.dcmread(io.BytesIO(part.content)) for part in parts]


def test_a_missing_orthanc_fails_saying_how_to_install_it(monkeypatch):
    import gateway_orthanc

    monkeypatch.setattr(gateway_orthanc.shutil, "which", lambda name: None)
    monkeypatch.setattr(gateway_orthanc, "SBIN_ORTHANC", gateway_orthanc.Path("/nonexistent"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y orthanc orthanc-dicomweb"):
        gateway_orthanc.orthanc_path()


@pytest.mark.slow
def test_orthanc_pushes_a_study_and_gets_the_sr_back(pacs: Pacs):
    study = generate_uid()
    mr, ct = instance(study), instance(study, modality="CT")
    for ds in (mr, ct):
        stored = pacs.rest.post("/instances", content=to_bytes(ds))
        assert stored.status_code == 200, stored.text
    orthanc_study = stored.json()["ParentStudy"]

    # Orthanc's own STOW-RS client sends the study to the gateway's receiver.
    sent = pacs.rest.post("/dicom-web/servers/brainscan/stow", json={"Resources": [orthanc_study]})
    assert sent.status_code == 200, f"{sent.text}\n{pacs.orthanc.tail()}"

    # QIDO-RS: the SR series is in the study, found by modality.
    found = pacs.rest.get(
        f"/dicom-web/studies/{study}/series",
        params={"Modality": "SR"},
        headers={"Accept": "application/dicom+json"},
    )
    assert found.status_code == 200, found.text
    [series] = found.json()
    series_uid = series["0020000E"]["Value"][0]
    assert "NOT FOR DIAGNOSTIC USE" in series["0008103E"]["Value"][0]
    listed = pacs.rest.get(
        f"/dicom-web/studies/{study}/series/{series_uid}/instances",
        headers={"Accept": "application/dicom+json"},
    )
    [sr_item] = listed.json()  # one SR: the CT instance was skipped
    sr_uid = sr_item["00080018"]["Value"][0]

    # WADO-RS: the SR itself, read with pydicom and highdicom.
    [dataset] = wado_instances(
        pacs.rest.get(
            f"/dicom-web/studies/{study}/series/{series_uid}/instances/{sr_uid}",
            headers={"Accept": 'multipart/related; type="application/dicom"'},
        )
    )
    assert dataset.Modality == "SR" and dataset.VerificationFlag == "UNVERIFIED"
    assert dataset.StudyInstanceUID == study
    report = hd.sr.srread(io.BytesIO(to_bytes(dataset)))
    assert isinstance(report, hd.sr.Comprehensive3DSR)
    [group] = report.content.get_image_measurement_groups()
    [source] = group.source_images
    assert source.referenced_sop_instance_uid == mr.SOPInstanceUID

    # The right finding and model version: what the upload route answers for the same file.
    answer = pacs.gateway.post("/api/v1/predictions", files={"file": ("a.dcm", to_bytes(mr))})
    expected = answer.json()
    assert group.finding_type.value == dicom_sr.FINDING_CODES[expected["label"]].value
    [probability] = group.get_measurements(name=codes.DCM.Probability)
    assert probability.value == pytest.approx(expected["confidence"])
    observer = report.content.get_observer_contexts(observer_type=codes.DCM.Device)[0]
    attributes = observer.observer_identifying_attributes
    assert attributes.name == MODEL_NAME == expected["model"]["name"]
    assert attributes.serial_number == expected["model"]["version"] == "1"
    assert attributes.uid == dicom_sr.device_uid(MODEL_NAME, "1")
