"""A prediction as a DICOM Comprehensive 3D SR (TID 1500 Measurement Report), built with highdicom.

What goes in comes from the same ``PredictionResult`` the JSON answer is made of: the finding
(the class, coded by ``FINDING_CODES``), its probability (the answer's ``confidence``), the
uncertain and out-of-distribution flags, the model's name and version as the device observer
and as contributing equipment (IHE AI Results), and a reference to the source instance (and to
its frame, for a multi-frame file). The SR joins the source's study in a series of its own; the
patient and study attributes are copied from the source, as DICOM requires of an instance in
the same study. That copy is the one place patient data leaves the gateway: nothing here logs
or quotes a header value, and error messages name attributes, never their values.

docs/gateway.md ("Results as DICOM SR") describes the content and the code table.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import uuid
from dataclasses import dataclass

import highdicom as hd
import pydicom
from anyio import to_thread
from brainscan_servicekit import get_logger
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid
from starlette.responses import Response

from ..errors import BadUpload, ErrorCode
from ..imaging.upload_format import UploadFormat, detect_format
from ..prediction.predictor import PredictionOptions, PredictionResult, Predictor

_log = get_logger("brainscan.results.dicom_sr")
# highdicom logs at INFO which source instance (by UID) it copies patient data from: not needed
# in the gateway's logs, which carry no DICOM identifiers.
logging.getLogger("highdicom").setLevel(logging.WARNING)

MEDIA_TYPE = "application/dicom"
"""The answer's Content-Type (DICOM Part 10 file, RFC 3240)."""
RESULT_DICOM_SR = "dicom-sr"
"""``?result=dicom-sr`` asks for the SR, as ``Accept: application/dicom`` does."""
RESULT_JSON = "json"

MANUFACTURER = "brainscan"
SCHEME = "99BRAINSCAN"
"""Private coding scheme (PS3.3 8.2: "99" prefix) for what no standard code is used for here."""
SERIES_NUMBER = 990
"""Series Number of the SR series (a number viewers sort by, far from acquired series)."""

# The finding, per class of the brainscan models. SNOMED CT has concepts for glioma, meningioma,
# pituitary adenoma and "no abnormality detected", but their identifiers could not be checked
# against a SNOMED CT release here (public copies disagree), so the classes are coded in the
# private scheme rather than with a SNOMED identifier that may be wrong. Standard codes are used
# where DICOM's own code tables (PS3.16, as pydicom ships them) give them: see below.
FINDING_CODES: dict[str, Code] = {
    "glioma": Code("GLIOMA", SCHEME, "Glioma"),
    "meningioma": Code("MENINGIOMA", SCHEME, "Meningioma"),
    "pituitary": Code("PITUITARY", SCHEME, "Pituitary tumor"),
    "notumor": Code("NOTUMOR", SCHEME, "No tumor"),
}
UNCERTAIN = Code("UNCERTAIN", SCHEME, "Uncertain: review the image")
"""Below the class's confidence threshold, or not assessed (JSON ``uncertain``)."""
OUT_OF_DISTRIBUTION = Code("OOD", SCHEME, "Out of distribution")
"""Unlike the training images (JSON ``in_distribution: false``): the finding is not one."""
NOT_CHECKED = Code("NOTCHECKED", SCHEME, "Not checked: the model has no guard")
"""The value of OUT_OF_DISTRIBUTION when the served model carries no guard (``null``)."""
# From PS3.16 (pydicom's code dictionary): DCM 122157 Probability, UCUM "1" (no units),
# SCT 373066001/373067005 Yes/No, SCT 12738006 Brain, DCM 123110 Artificial Intelligence,
# DCM 121007 Device, DCM 109102 Processing Equipment, CID 100 procedure codes.
PROBABILITY = codes.DCM.Probability
UNIT_ONE = codes.UCUM.NoUnits
YES, NO = codes.SCT.Yes, codes.SCT.No

# Patient and study attributes highdicom reads from the source (Type 2 in the SR: present,
# possibly empty); a source without them gets them empty rather than an error.
_TYPE2_FROM_SOURCE = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
# Without these the SR cannot say which instance, series and study it belongs to.
_REFERENCE_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID")


def wants_sr(accept: str | None, result: str | None) -> bool:
    """Whether the caller asked for the SR: ``result`` decides when given, else the Accept header
    when it prefers application/dicom to application/json (a tie, ``*/*`` or none: JSON)."""
    if result is not None:
        return result == RESULT_DICOM_SR
    if not accept:
        return False
    ranges = _media_ranges(accept)
    dicom = _quality(ranges, "application", "dicom")
    return dicom > 0 and dicom > _quality(ranges, "application", "json")


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    ranges = []
    for part in accept.split(","):
        fields = [field.strip() for field in part.split(";")]
        kind, _, subtype = fields[0].lower().partition("/")
        quality = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        if kind and subtype:
            ranges.append((kind, subtype, quality))
    return ranges


def _quality(ranges: list[tuple[str, str, float]], kind: str, subtype: str) -> float:
    """The q of the most specific range matching ``kind/subtype`` (RFC 9110 12.5.1); 0: none."""
    best, found = -1, 0.0
    for range_kind, range_subtype, quality in ranges:
        if (range_kind, range_subtype) == (kind, subtype):
            specificity = 2
        elif (range_kind, range_subtype) == (kind, "*"):
            specificity = 1
        elif (range_kind, range_subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best:
            best, found = specificity, quality
    return found


@dataclass(frozen=True)
class SrSource:
    """The header of the uploaded DICOM (no pixel data), as the SR needs it."""

    header: Dataset


def sr_source(data: bytes) -> SrSource:
    """The upload's DICOM header for an SR, or a 422 saying why an SR cannot be made of it.

    Checked before inference, so a refused request costs no inference call.
    """
    if detect_format(data[:512]) is not UploadFormat.DICOM:
        raise BadUpload(
            ErrorCode.SR_NEEDS_DICOM,
            "a DICOM SR result needs a DICOM upload: the SR joins the source image's study and "
            "refers to it by its UIDs, which a JPEG or PNG does not have. Send the DICOM file, "
            "or ask for the JSON answer (Accept: application/json, or no result parameter)",
        )
    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for damaged files
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            "the file has a DICOM marker but cannot be read: it is truncated or damaged",
        ) from exc
    return source_of(header)


def source_of(header: Dataset) -> SrSource:
    """``header`` as an SR's source, or a 422 naming the reference attributes it lacks."""
    missing = [keyword for keyword in _REFERENCE_KEYWORDS if not str(header.get(keyword, ""))]
    if missing:
        raise BadUpload(
            ErrorCode.DICOM_SOURCE_INCOMPLETE,
            f"the DICOM file has no {', '.join(missing)}: a DICOM SR result must refer to the "
            "source instance and join its study and series, so it cannot be made for this file "
            "(the JSON answer can: ask without Accept: application/dicom or result=dicom-sr)",
        )
    for keyword in _TYPE2_FROM_SOURCE:
        if keyword not in header:
            setattr(header, keyword, None)
    return SrSource(header)


async def prepare(data: bytes) -> SrSource:
    """``sr_source`` in a worker thread (a header can be long to parse)."""
    return await to_thread.run_sync(sr_source, data)


@dataclass(frozen=True)
class SrResult:
    """A prediction and the SR made of it (the bytes of a DICOM Part 10 file)."""

    prediction: PredictionResult
    body: bytes
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str


async def predict_sr(
    predictor: Predictor,
    data: bytes,
    source: SrSource,
    frame: int | None,
    request_id: str,
    series_description: str,
) -> SrResult:
    """Classify ``data`` (the DICOM ``source`` was read from) and build its SR: the one path of
    both the upload route's SR answer and the STOW-RS receiver. The SR is built in a worker
    thread (~60 ms of CPU)."""
    prediction = await predictor.predict(data, PredictionOptions(frame=frame), request_id)
    sop_instance_uid = generate_uid()
    body = await to_thread.run_sync(
        build_sr, prediction, source, series_description, sop_instance_uid
    )
    # Only what identifies no one: the SR's own content is not logged.
    _log.info(
        "dicom sr",
        **{
            "event.action": "dicom_sr",
            "dicom_sr.bytes": len(body),
            "model.name": prediction.model_name,
            "model.version": prediction.model_version,
        },
    )
    header = source.header
    return SrResult(
        prediction,
        body,
        sop_instance_uid,
        series_uid(header, prediction.model_name, _version(prediction)),
        str(header.StudyInstanceUID),
    )


def sr_response(sr: SrResult) -> Response:
    """The SR as the HTTP answer of the upload route."""
    return Response(
        sr.body,
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="brainscan-result-sr.dcm"'},
    )


def device_uid(model_name: str, model_version: str) -> str:
    """The device observer's UID: the same for the same model name and version, always."""
    return _name_based_uid("model", model_name, model_version)


def series_uid(source: Dataset, model_name: str, model_version: str) -> str:
    """The SR series: one per source series and model version, never the source's own."""
    return _name_based_uid(
        "sr-series",
        str(source.StudyInstanceUID),
        str(source.SeriesInstanceUID),
        model_name,
        model_version,
    )


def _name_based_uid(*parts: str) -> str:
    """A UID under 2.25 (PS3.5 B.2) from a name-based UUID (RFC 9562 version 5) of ``parts``:
    deterministic, unlike pydicom's ``generate_uid(prefix=None)``, which ignores its entropy."""
    name = json.dumps(["brainscan", *parts])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def finding_code(label: str) -> Code:
    """The code of a class; a class outside the table is coded by its name (privately)."""
    code = FINDING_CODES.get(label)
    if code is not None:
        return code
    value = label.upper() if len(label) <= 16 and label.isascii() and "\\" not in label else None
    if value is None:  # SH holds 16 characters
        value = hashlib.sha256(label.encode()).hexdigest()[:16].upper()
    return Code(value, SCHEME, label[:64])


def _version(result: PredictionResult) -> str:
    return result.model_version or "unversioned"


def build_sr(
    result: PredictionResult,
    source: SrSource,
    series_description: str,
    sop_instance_uid: str | None = None,
) -> bytes:
    """The SR of ``result`` for ``source``, as the bytes of a DICOM Part 10 file (a new SOP
    Instance UID unless one is given)."""
    header = source.header
    name = result.model_name
    version = _version(result)
    uid = device_uid(name, version)

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uid,
            name=name,
            manufacturer_name=MANUFACTURER,
            model_name=name,
            serial_number=version,
        ),
    )
    frames = [result.frame.index] if result.frame is not None else None
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier="brainscan classification"
        ),
        finding_type=finding_code(result.label),
        finding_sites=[hd.sr.FindingSite(codes.SCT.Brain)],
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=name,
            version=version,
            family=codes.DCM.ArtificialIntelligence,
            manufacturer=MANUFACTURER,
        ),
        measurements=[
            hd.sr.Measurement(name=PROBABILITY, value=float(result.confidence), unit=UNIT_ONE)
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(UNCERTAIN, YES if result.uncertain else NO),
            hd.sr.QualitativeEvaluation(OUT_OF_DISTRIBUTION, _ood_value(result)),
        ],
        source_images=[
            hd.sr.SourceImageForMeasurementGroup.from_source_image(
                header, referenced_frame_numbers=frames
            )
        ],
    )
    procedure = (
        codes.cid100.MRIUnspecifiedBodyRegion
        if str(header.get("Modality", "")).upper() == "MR"
        else codes.cid100.ImagingProcedure
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure,
        imaging_measurements=[group],
        referenced_images=[header] if _describable(header) else None,
    )
    equipment = hd.ContributingEquipment(
        manufacturer=MANUFACTURER,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=name,
        software_versions=version,
        device_serial_number=version,
        contribution_datetime=datetime.datetime.now(datetime.UTC),
        contribution_description="AI classification (brainscan); not for diagnostic use",
    )
    equipment.DeviceUID = uid
    sr = hd.sr.Comprehensive3DSR(
        evidence=[header],
        content=report[0],
        series_instance_uid=series_uid(header, name, version),
        series_number=SERIES_NUMBER,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=name,
        software_versions=version,
        device_serial_number=version,
        series_description=series_description,
        is_complete=True,
        is_final=False,
        is_verified=False,
        contributing_equipment=[equipment],
    )
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, sr, enforce_file_format=True)
    return buffer.getvalue()


def _describable(header: Dataset) -> bool:
    """Whether the Image Library (TID 1600, optional in TID 1500) can describe the source: for
    MR and CT highdicom needs the plane's geometry at the top level, which an enhanced MR keeps
    in its functional groups and a minimal file may lack. The reference in the measurement
    group and the evidence sequence are there either way."""
    try:
        hd.sr.ImageLibrary([header])
    except (AttributeError, TypeError, ValueError, IndexError):
        return False
    return True


def _ood_value(result: PredictionResult) -> Code:
    in_distribution = result.check.in_distribution
    if in_distribution is None:
        return NOT_CHECKED
    return NO if in_distribution else YES
