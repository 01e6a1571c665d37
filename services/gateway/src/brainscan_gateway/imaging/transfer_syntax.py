"""Which DICOM transfer syntaxes the gateway decodes, and with which pydicom plugin.

The decoders are chosen by licence (docs/gateway.md, "DICOM transfer syntaxes"): python-gdcm
(BSD) for the JPEG family and JPEG-LS, pylibjpeg-openjpeg (MIT) for JPEG 2000, pyjpegls (MIT)
as a second JPEG-LS decoder, pylibjpeg-rle (MIT) and pydicom's own code for RLE, pydicom itself
for the uncompressed and deflated syntaxes. pylibjpeg-libjpeg is GPL-3 and is never installed.

pydicom 3's gdcm plugin refuses 12-bit JPEG Extended (1.2.840.10008.1.2.4.51), which only
pylibjpeg-libjpeg would otherwise decode; GDCM itself decodes it correctly, so this module adds
a plugin that calls GDCM for exactly that case (``install``).
"""

from __future__ import annotations

import re
import threading

from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import DecodeRunner

from ..errors import BadUpload, ErrorCode

try:
    import gdcm

    # GDCM's own trace goes to the process's stderr, outside our JSON logs: off. (The codec
    # libraries it and openjpeg bundle still print a line there for a damaged codestream, or
    # when 12-bit JPEG first meets the 8-bit codec; those lines quote no header value.)
    gdcm.Trace.ErrorOff()
    gdcm.Trace.WarningOff()
    HAVE_GDCM = True
except ImportError:  # the gateway depends on python-gdcm; this keeps pydicom's plugin contract
    HAVE_GDCM = False

# The plugin contract pydicom checks (pydicom.pixels.common.CoderBase.add_plugin).
DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("python-gdcm>=3.0.10",)}
PLUGIN_LABEL = "brainscan-gdcm-12bit"

# The syntaxes a sender can expect to work (docs/gateway.md lists them with their decoders).
DECODED_SYNTAXES: tuple[uid.UID, ...] = (
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
    uid.RLELossless,
)

# A UID is digits and dots, at most 64 characters (PS3.5 9.1): it cannot carry a name or a date.
_UID = re.compile(r"[0-9.]{1,64}")

_installed = False
_install_lock = threading.Lock()


def is_available(transfer_syntax: str) -> bool:
    """pydicom's plugin contract: whether this plugin can decode ``transfer_syntax``."""
    return HAVE_GDCM and transfer_syntax == uid.JPEGExtended12Bit


def install() -> None:
    """Add the 12-bit JPEG Extended plugin to pydicom's decoder, once per process.

    It goes after pydicom's own plugins, which are tried first: they decode 8-bit JPEG
    Extended, and for 12 bits they decline and pydicom falls through to this one.
    """
    global _installed
    with _install_lock:  # add_plugin is not thread-safe, and decodes run in worker threads
        if _installed:
            return
        decoder = get_decoder(uid.JPEGExtended12Bit)
        if PLUGIN_LABEL not in decoder.available_plugins:
            decoder.add_plugin(PLUGIN_LABEL, (__name__, "decode_jpeg_extended_frame"))
        _installed = True


def decode_jpeg_extended_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """One 12-bit JPEG Extended frame -> its samples, as pydicom's gdcm plugin does for 8 bits."""
    bits_stored = runner.bits_stored
    if runner.samples_per_pixel != 1 or not 8 < bits_stored <= 12:
        # 8-bit frames are decoded by pydicom's plugins before this one is tried.
        raise NotImplementedError("only 9 to 12-bit greyscale JPEG Extended is handled here")
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetDataElement(element)
    photometric = gdcm.PhotometricInterpretation.GetPIType(runner.photometric_interpretation)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    # 12-bit samples always come back in 16-bit containers.
    runner.set_option("bits_allocated", 16)
    image.SetPixelFormat(
        gdcm.PixelFormat(1, 16, bits_stored, bits_stored - 1, runner.pixel_representation)
    )
    buffer = image.GetBuffer()
    if not buffer:
        raise ValueError("GDCM could not decode the JPEG Extended frame")
    # GDCM hands back char* as str: re-encode it to the bytes it was.
    return buffer.encode("utf-8", "surrogateescape")


def check_decodable(dataset: Dataset) -> None:
    """Refuse, naming it, a transfer syntax no installed plugin decodes (415)."""
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            "the DICOM file meta information has no transfer syntax: the file is damaged",
        )
    syntax = uid.UID(str(syntax))
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:  # a syntax pydicom has no decoder for at all (video, JPEG XL)
        available = False
    if not available:
        raise BadUpload(ErrorCode.DICOM_UNSUPPORTED, unsupported_message(syntax), status=415)


def unsupported_message(syntax: uid.UID) -> str:
    """The 415 message: the syntax by name and UID (not patient data), and what to send."""
    return (
        f"the DICOM pixel data is encoded as {describe(syntax)}, which this service cannot "
        "decode: send the image uncompressed (Explicit VR Little Endian, 1.2.840.10008.1.2.1) "
        "or in one of the supported syntaxes (JPEG baseline, extended or lossless, JPEG-LS, "
        "JPEG 2000, RLE or deflate), or as PNG"
    )


def describe(syntax: object) -> str:
    """A transfer syntax as a message may name it: "JPEG-LS Lossless Image Compression (1.2…)"."""
    text = str(syntax or "")
    if not _UID.fullmatch(text):  # not a UID: quoting it could echo any text the file carries
        return "an invalid transfer syntax UID"
    name = uid.UID(text).name
    return f"{name} ({text})" if name != text else f"an unknown transfer syntax ({text})"
