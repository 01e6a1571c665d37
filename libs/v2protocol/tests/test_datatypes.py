"""Protocol datatypes against numpy and onnxruntime types."""

import numpy as np
import pytest
from brainscan_v2protocol import UnknownDatatype, numpy_dtype, onnxruntime_datatype, v2_datatype


@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [("UINT8", "u1"), ("INT64", "<i8"), ("FP16", "<f2"), ("FP32", "<f4"), ("BOOL", "?")],
)
def test_datatypes_map_both_ways(datatype, dtype):
    assert numpy_dtype(datatype) == np.dtype(dtype)
    assert v2_datatype(np.dtype(dtype)) == datatype
    assert v2_datatype(np.dtype(dtype).newbyteorder(">")) == datatype


def test_an_unknown_datatype_is_refused_listing_the_known_ones():
    with pytest.raises(UnknownDatatype, match=r"'BYTES' is not supported .*UINT8"):
        numpy_dtype("BYTES")
    with pytest.raises(UnknownDatatype, match="complex64"):
        v2_datatype(np.dtype(np.complex64))


def test_onnxruntime_types_have_protocol_names():
    assert onnxruntime_datatype("tensor(float)") == "FP32"
    assert onnxruntime_datatype("tensor(uint8)") == "UINT8"
    with pytest.raises(UnknownDatatype, match="seq"):
        onnxruntime_datatype("seq(tensor(float))")
