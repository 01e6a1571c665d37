"""brainscan model-sync: follows the MLflow registry's production model and publishes it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("brainscan-model-sync")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

SERVICE_NAME = "brainscan-model-sync"
