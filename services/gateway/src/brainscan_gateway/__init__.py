"""brainscan gateway: uploads, image checks, confidence thresholds and the web page."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("brainscan-gateway")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

SERVICE_NAME = "brainscan-gateway"
