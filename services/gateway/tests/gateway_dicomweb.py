"""DICOMweb helpers for tests: MR instances of one study, STOW-RS bodies, and a push server.

The push server is a small Starlette app on a real loopback port (``RunningServer``) that
answers STOW-RS as a PACS does and keeps what it was sent, so a test can read the SRs back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pydicom
from brainscan_gateway.dicomweb import multipart
from brainscan_testsupport.dicoms import mr_dataset, mr_slice, to_bytes
from gateway_servers import RunningServer
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STOW_TYPE = 'multipart/related; type="application/dicom"'


def instance(
    study: str | None = None,
    series: str | None = None,
    *,
    modality: str = "MR",
    series_description: str | None = "AX T2 FLAIR",
    size: int = 96,
) -> Dataset:
    """An MR slice (or, with another modality, the same pixels called that) of ``study``."""
    ds = mr_dataset(mr_slice(size))
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.Modality = modality
    ds.AccessionNumber = "ACC-4711"
    if modality == "CT":
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    if series_description is not None:
        ds.SeriesDescription = series_description
    return ds


def stow_body(*datasets: Dataset | bytes) -> tuple[bytes, dict[str, str]]:
    """A STOW-RS request body of ``datasets`` and its headers."""
    body, content_type = multipart.encode(
        [d if isinstance(d, bytes) else to_bytes(d) for d in datasets]
    )
    return body, {"Content-Type": content_type, "Accept": multipart.DICOM_JSON}


@dataclass
class PushServer:
    """A STOW-RS server that stores what it gets; ``answer_status`` makes it refuse."""

    received: list[Dataset] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    answer_status: int = 200
    server: RunningServer | None = None

    def app(self) -> Starlette:
        async def studies(request: Request) -> JSONResponse:
            self.requests.append(dict(request.headers))
            boundary = multipart.boundary_of(request.headers.get("content-type"))
            parts = multipart.split(await request.body(), boundary, 1000)
            datasets = [pydicom.dcmread(io.BytesIO(part.content)) for part in parts]
            if self.answer_status != 200:
                return JSONResponse({}, status_code=self.answer_status)
            self.received.extend(datasets)
            items = [
                {
                    "00081150": {"vr": "UI", "Value": [ds.SOPClassUID]},
                    "00081155": {"vr": "UI", "Value": [ds.SOPInstanceUID]},
                }
                for ds in datasets
            ]
            return JSONResponse(
                {"00081199": {"vr": "SQ", "Value": items}},
                media_type=multipart.DICOM_JSON,
            )

        return Starlette(routes=[Route("/dicom-web/studies", studies, methods=["POST"])])

    def start(self) -> PushServer:
        self.server = RunningServer(self.app).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/dicom-web"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def items(answer: dict, sequence: str) -> list[dict]:
    return answer.get(sequence, {}).get("Value", [])


def value(item: dict, tag: str) -> object | None:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None
