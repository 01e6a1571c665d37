"""brainscan inference: ONNX image classifiers on onnxruntime, Open Inference Protocol (v2)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("brainscan-inference")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

SERVICE_NAME = "brainscan-inference"
