import pytest
from brainscan_gateway.errors import BadUpload, ErrorCode
from brainscan_gateway.imaging.upload_format import UploadFormat, detect_format
from brainscan_testsupport.dicoms import mr_dataset, mr_slice, to_bytes
from gateway_images import jpeg_bytes, png_bytes


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (jpeg_bytes(), UploadFormat.JPEG),
        (png_bytes(), UploadFormat.PNG),
        (to_bytes(mr_dataset(mr_slice())), UploadFormat.DICOM),
    ],
)
def test_supported_formats_are_recognised_by_content(data, expected):
    assert detect_format(data[:512]) is expected


def test_empty_upload_is_refused():
    with pytest.raises(BadUpload) as caught:
        detect_format(b"")
    assert caught.value.code is ErrorCode.EMPTY_FILE


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"hello, this is not an image\n", "a text file"),
        (b'{"image": "nope"}', "a JSON or text file"),
        (b"<!DOCTYPE html><html></html>", "an HTML page"),
        (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
        (b"BM\x36\x00\x00\x00", "a BMP image"),
        (b"II*\x00\x08\x00\x00\x00", "a TIFF image"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a WebP image"),
        (b"PK\x03\x04\x14\x00", "a ZIP archive"),
        (b"\x1f\x8b\x08\x00", "a gzip archive"),
        (b"\x00\x00\x00\x18ftypheic", "a HEIF/AVIF image"),
        (bytes(range(256)), "in an unknown format"),
    ],
)
def test_other_formats_are_named_in_a_415(head, named):
    with pytest.raises(BadUpload) as caught:
        detect_format(head)
    error = caught.value
    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert error.status == 415
    assert named in error.message
    assert "JPEG, PNG or DICOM" in error.message


def test_text_cut_inside_a_multibyte_character_is_still_text():
    head = ("résumé " * 80).encode()[:511]
    with pytest.raises(BadUpload, match="a text file"):
        detect_format(head)
