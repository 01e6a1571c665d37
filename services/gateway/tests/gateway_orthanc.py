"""A real Orthanc with its DICOMweb plugin, started for a test (Debian's `orthanc` and
`orthanc-dicomweb` packages; .ci/run installs them).

Its configuration is written to the test's tmp_path: storage and index there, HTTP and DICOM
on free loopback ports, no remote access and no authentication (loopback only), the DICOMweb
plugin from Debian's plugin folder with its root at /dicom-web/, and DICOMweb "servers" it can
push to (the gateway's receiver). It runs in a process group of its own, which ``stop`` ends
(SIGTERM, then SIGKILL), so no Orthanc outlives its test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

INSTALL_HINT = (
    "install Debian's Orthanc and its DICOMweb plugin (`apt-get install -y orthanc "
    "orthanc-dicomweb`); .ci/run installs them on CI machines"
)
PLUGIN_FOLDER = Path("/usr/share/orthanc/plugins")
"""Where Debian's orthanc-dicomweb links libOrthancDicomWeb.so (`dpkg -L orthanc-dicomweb`)."""
DICOMWEB_PLUGIN = PLUGIN_FOLDER / "libOrthancDicomWeb.so"
ROOT = "/dicom-web/"
SBIN_ORTHANC = Path("/usr/sbin/Orthanc")
"""Debian's binary, which is not on a non-root user's PATH."""


def orthanc_path() -> str:
    """The Orthanc binary; fails the calling test, saying how to install it, when missing."""
    path = shutil.which("Orthanc") or (str(SBIN_ORTHANC) if SBIN_ORTHANC.exists() else None)
    if path is None:
        pytest.fail(f"Orthanc is not installed: {INSTALL_HINT}", pytrace=False)
    if not DICOMWEB_PLUGIN.exists():
        pytest.fail(f"Orthanc's DICOMweb plugin is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Orthanc:
    """One Orthanc process; ``url`` is its REST API, ``dicomweb`` its DICOMweb root."""

    def __init__(self, directory: Path, servers: dict[str, dict] | None = None) -> None:
        self.directory = directory
        self.http_port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb = self.url + ROOT.rstrip("/")
        self.log = directory / "orthanc.log"
        self.config = directory / "orthanc.json"
        self.config.write_text(json.dumps(self._configuration(servers or {}), indent=2))
        self.process: subprocess.Popen | None = None

    def _configuration(self, servers: dict[str, dict]) -> dict:
        return {
            "Name": "brainscan-test",
            "StorageDirectory": str(self.directory / "storage"),
            "IndexDirectory": str(self.directory / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "BRAINSCANTEST",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,  # loopback only, a throw-away archive
            "HttpTimeout": 60,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {
                "Enable": True,
                "Root": ROOT,
                "EnableWado": False,
                "Servers": servers,
            },
        }

    def start(self, timeout: float = 60.0) -> Orthanc:
        binary = orthanc_path()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # its own process group, ended by stop()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/system", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"Orthanc did not answer /system in {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
