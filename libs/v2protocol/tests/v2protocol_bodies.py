"""Test bodies built by hand, independently of the code under test."""

import json

import numpy as np


def binary_response(outputs: dict[str, np.ndarray], version: str = "3") -> tuple[bytes, str]:
    entries, chunks = [], []
    for name, array in outputs.items():
        raw = np.ascontiguousarray(array).tobytes()
        entries.append(
            {
                "name": name,
                "datatype": {"float32": "FP32", "uint8": "UINT8"}[str(array.dtype)],
                "shape": list(array.shape),
                "parameters": {"binary_data_size": len(raw), "activation_class": "1"},
            }
        )
        chunks.append(raw)
    header = json.dumps({"model_name": "m", "model_version": version, "outputs": entries}).encode()
    return header + b"".join(chunks), str(len(header))
