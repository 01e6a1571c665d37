"""OOD corpus items near the training domain: other modalities, real scans shipped in installed
packages, and the generator's slices transformed or configured as training never does."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from brainscan_synthetic_mri.anatomy import (
    BRAIN_THRESHOLD,
    CANVAS,
    MIDLINE_X,
    NORMAL_AXIS,
    SliceMaps,
    Template,
    cut_slice,
    load_template,
)
from brainscan_synthetic_mri.contrast import (
    T1_CSF,
    T1_GREY,
    T1_WHITE,
    Contrast,
    sample_contrast,
    shell_curve,
)
from brainscan_synthetic_mri.shapes import smooth_noise
from brainscan_synthetic_mri.synthetic import CLASSES, render_example
from PIL import Image
from scipy import ndimage as ndi

SIZE = 256  # the training images' side
# A scanner's field of view is fixed in mm: a typical head spans 0.9 of it on training images.
FIELD_OF_VIEW_MM = 210.0


class Entry(NamedTuple):
    """One corpus image before it gets its category: "what" it is, the image, how it was made."""

    what: str
    image: Image.Image
    source: str


# --- pixel helpers ------------------------------------------------------------------------------


def to_uint8(unit: np.ndarray) -> np.ndarray:
    return (np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def stretch(values: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """The low..high percentiles to 0..255, as a viewer's automatic window does."""
    lo, hi = np.percentile(values, [low, high])
    return to_uint8((values - lo) / max(hi - lo, 1e-6))


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """A CT window: center - width/2 .. center + width/2 (Hounsfield units) to 0..255."""
    return to_uint8((values - (center - width / 2)) / width)


def upscale(image: Image.Image, min_side: int = 128) -> Image.Image:
    """Small scans enlarged as a viewer's export would be (bilinear), shorter side >= min_side."""
    factor = min_side / min(image.size)
    if factor <= 1:
        return image
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.BILINEAR)


def grey(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels), mode="L")


def _child(rng: np.random.Generator) -> np.random.Generator:
    """A stream for one image: the category's stream moves one draw on, however many the image
    takes, so items do not shift each other's randomness."""
    return np.random.default_rng(int(rng.integers(2**63)))


# --- the generator ------------------------------------------------------------------------------


def _render(
    rng: np.random.Generator, class_name: str | None = None, **hooks
) -> tuple[np.ndarray, str]:
    """One generated slice (uint8) and a description; class drawn at random unless given."""
    rng = _child(rng)
    class_name = class_name or CLASSES[int(rng.integers(len(CLASSES)))]
    rendered = render_example(class_name, rng, SIZE, with_masks=False, **hooks)
    kind = f"{rendered.class_name} {rendered.plane} {rendered.contrast}"
    return rendered.image, f"render_example {kind} slice"


def _plane_slice(rng: np.random.Generator, plane: str, **hooks) -> tuple[np.ndarray, str]:
    """A generated notumor slice of `plane`, at a usable index like training's."""
    template = load_template()
    low, high = template.slice_ranges[plane]
    maps = cut_slice(template, plane, int(rng.integers(low, high + 1)))
    return _render(rng, "notumor", slice_maps=maps, **hooks)


def _true_scale_fill(maps: SliceMaps) -> float:
    """head_fill that keeps the head at its size in mm, as a fixed field of view would."""
    rows, cols = np.nonzero(maps.signed_mm < 12.0)
    span = max(np.ptp(rows), np.ptp(cols)) + 1 if rows.size else 1
    return float(span) / FIELD_OF_VIEW_MM


def _ct_contrast(rng: np.random.Generator) -> Contrast:
    """CT densities: bone white, brain mid grey (grey a little above white), CSF darker, fat
    below water, air black."""
    widths = list(rng.uniform([1.0, 1.5, 2.0, 1.5, 2.0, 1.0], [3.0, 2.5, 4.5, 2.5, 5.0, 2.5]))
    return Contrast(
        name="ct",
        tissue_knots=(0.0, T1_CSF, T1_GREY, T1_WHITE, 1.0),
        tissue_values=(0.22, 0.25, 0.40, 0.37, 0.37),
        edema=0.0,
        enhancing=0.0,
        **shell_curve(widths, [0.25, 1.0, 0.72, 1.0, 0.16, 0.40]),
    )


def _mr_contrast(name: str, tissue: tuple[float, ...], shell: list[float]) -> Contrast:
    """A contrast training never draws: signal at CSF, grey, white, and of the head layers."""
    knots = (0.0, 0.12, T1_CSF, 0.5, T1_GREY, T1_WHITE, 1.0)
    widths = [2.0, 1.5, 3.0, 1.5, 3.5, 1.8]
    return Contrast(name, knots, tissue, edema=0.0, enhancing=0.0, **shell_curve(widths, shell))


def _with_shell(contrast: Contrast, widths: list[float], signals: list[float]) -> Contrast:
    return dataclasses.replace(contrast, **shell_curve(widths, signals))


def _oblique_maps(template: Template, pitch_deg: float, roll_deg: float) -> SliceMaps:
    """An axial section tilted by pitch (about left-right) and roll (about front-back)."""
    pitch, roll = np.deg2rad(pitch_deg), np.deg2rad(roll_deg)
    # Voxel-space directions of canvas columns (patient right->left as on axial cuts) and rows.
    col_dir = np.array([np.cos(roll), 0.0, np.sin(roll)])
    row_dir = np.array([0.0, -np.cos(pitch), np.sin(pitch)])
    center = np.array([MIDLINE_X, 116.0, 80.0])
    grid = np.arange(CANVAS, dtype=np.float32) - (CANVAS - 1) / 2
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    points = center[:, None, None] + col_dir[:, None, None] * cols + row_dir[:, None, None] * rows
    t1 = ndi.map_coordinates(template.t1, points, order=1, cval=0.0)
    signed = ndi.map_coordinates(template.signed_mm, points, order=1, cval=template.far_mm)
    # Labelled axial at z index 80, far from the sella: no pituitary gland is drawn into it.
    return SliceMaps(
        plane="axial",
        index=80,
        t1=t1,
        brain=t1 > BRAIN_THRESHOLD,
        signed_mm=signed,
        midline_col=None,
        mni_mm=float(template.affine[2, 3] + 80),
    )


def _neck_maps(template: Template) -> SliceMaps:
    """A paramedian sagittal slice moved up the canvas with the neck below it: cord, CSF,
    vertebrae and discs, muscle, airway and fat. Off the midline, so no pituitary gland is drawn
    where the slice no longer is."""
    maps = cut_slice(template, "sagittal", MIDLINE_X + 7)
    shift = 40

    def moved_up(values: np.ndarray, fill) -> np.ndarray:
        out = np.full_like(values, fill)
        out[:-shift] = values[shift:]
        return out

    t1, brain = moved_up(maps.t1, 0.0), moved_up(maps.brain, False)
    signed = moved_up(maps.signed_mm, template.far_mm)
    bottom = int(np.flatnonzero(brain.any(axis=1))[-1])  # the medulla's lowest row
    cord_col = float(np.flatnonzero(brain[bottom]).mean())
    rows, cols = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    u = cols - (cord_col + 0.12 * np.clip(rows - bottom, 0, None))  # > 0 towards the face
    # The neck widens towards the shoulders; its skin bounds u_back..u_front.
    widen = 10.0 * np.tanh(np.clip(rows - bottom, 0, None) / 40.0)
    u_back, u_front = -52.0 - widen, 64.0 + widen
    vertebra = (((rows - bottom) % 19) < 14).astype(np.float32)
    layers = [  # (from u, to u, template-T1-like value); later layers paint over earlier ones
        (u_back, u_front, 0.97),
        (u_back + 6, u_front - 6, 0.5),
        (-11, 30, T1_CSF),
        (12, 28, 0.45 + 0.27 * vertebra),
        (-8, 8, T1_CSF),
        (-5, 5, 0.78),
    ]
    neck = (rows > bottom - 45) & (u > u_back) & (u < u_front)
    neck &= (signed > 14.0) | (rows > bottom)
    value = np.zeros_like(t1)
    for start, end, level in layers:
        value = np.where((u >= start) & (u < end), level, value)
    value = ndi.gaussian_filter(value, 1.2)  # soft tissue boundaries, not drawn edges
    airway = neck & (u > 36) & (u < 48)
    tissue = neck & ~airway & ~brain
    # The neck is painted as tissue (brain=True) so no skull layers wrap around it; air is far.
    signed = np.where(tissue, -1.0, np.where(airway, template.far_mm, signed))
    t1 = np.where(tissue, value, t1)
    return dataclasses.replace(
        maps, t1=t1.astype(np.float32), brain=brain | tissue, signed_mm=signed.astype(np.float32)
    )


# --- other modalities ---------------------------------------------------------------------------


def _dicom(name: str):
    import pydicom
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file(name, download=False))


def _hounsfield(ds) -> np.ndarray:
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    return ds.pixel_array.astype(np.float32) * slope + intercept


def _radiograph(template: Template, axis: int) -> np.ndarray:
    """Attenuation summed through the head along `axis` (1 frontal, 0 lateral): the skull's
    tangents make a bright ring, air stays black, as on a radiograph."""
    outside = template.signed_mm
    mu = (outside < 14.0).astype(np.float32) + 8.0 * ((outside > 2.0) & (outside < 8.5))
    path = mu.sum(axis=axis).T[::-1]
    image = (path / path.max()) ** 1.3  # film's response: soft tissue darker, bone bright
    canvas = np.zeros((SIZE, SIZE), dtype=np.float32)
    r0, c0 = (SIZE - path.shape[0]) // 2, (SIZE - path.shape[1]) // 2
    canvas[r0 : r0 + path.shape[0], c0 : c0 + path.shape[1]] = image
    return canvas


def _ultrasound_fan(rng: np.random.Generator) -> np.ndarray:
    """B-mode look: speckle (magnitude of filtered complex noise) in a fan from a top apex, a dark
    cyst and a bright interface, fading with depth."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    radius = np.hypot(rows + 10.0, cols - SIZE / 2)
    angle = np.arctan2(cols - SIZE / 2, rows + 10.0)
    fan = (radius > 30) & (radius < SIZE - 6) & (np.abs(angle) < np.deg2rad(38))
    speckle = np.hypot(
        *(ndi.gaussian_filter(rng.standard_normal((SIZE, SIZE)), (0.7, 1.8)) for _ in range(2))
    )
    echo = 0.5 + 0.15 * smooth_noise(rng, (SIZE, SIZE), 12.0)
    echo = np.where(np.hypot((rows - 150) / 28, (cols - 140) / 40) < 1, 0.05, echo)
    echo += 0.6 * np.exp(-(((radius - 200) / 3.0) ** 2))
    image = echo * speckle / speckle.mean() * np.exp(-radius / 260.0)
    return np.where(fan, image / np.percentile(image[fan], 99.5), 0.0)


def _pet_like(rng: np.random.Generator, template: Template) -> np.ndarray:
    """FDG-PET look on a colour scale: uptake in grey matter, blurred to ~8 mm, noisy."""
    t1 = cut_slice(template, "axial", 95).t1
    uptake = np.exp(-(((t1 - T1_GREY) / 0.1) ** 2)) + 0.35 * (t1 > 0.72)
    uptake = ndi.gaussian_filter(uptake, 3.5) * (1 + 0.08 * rng.standard_normal(t1.shape))
    return ndi.gaussian_filter(np.clip(uptake, 0, None), 1.0)


def other_modalities(rng: np.random.Generator) -> Iterator[Entry]:
    """CT (pydicom's test files and CT-like renders of the template), X-ray-like projections,
    ultrasound (real and synthetic), an abdominal MRI and a PET-like slice."""
    import matplotlib

    ct = _hounsfield(_dicom("CT_small.dcm"))
    for what, center, width in (("soft_tissue", 40, 400), ("bone", 500, 2000)):
        source = f"pydicom CT_small.dcm (GE CT of the neck), window W{width} L{center}"
        yield Entry(f"ct_small_{what}", upscale(grey(window(ct, center, width)), SIZE), source)
    head = _hounsfield(_dicom("J2K_pixelrep_mismatch.dcm"))
    for what, center, width in (("brain", 40, 80), ("bone", 500, 2000)):
        source = f"pydicom J2K_pixelrep_mismatch.dcm (head CT), window W{width} L{center}"
        yield Entry(f"ct_head_{what}_window", grey(window(head, center, width)), source)
    for plane in ("axial", "coronal"):
        image, kind = _plane_slice(rng, plane, contrast=_ct_contrast(_child(rng)))
        source = f"{kind}: CT densities (bone white, little grey-white contrast)"
        yield Entry(f"synthetic_ct_{plane}", grey(image), source)
    template = load_template()
    for what, axis in (("frontal", 1), ("lateral", 0)):
        film = _radiograph(template, axis) + 0.02 * rng.standard_normal((SIZE, SIZE))
        source = f"template head attenuation (bone x8) summed along volume axis {axis}"
        yield Entry(f"xray_{what}", grey(to_uint8(film)), source)
    source = "synthetic B-mode: speckle in a 76-degree fan, a cyst, fading with depth"
    yield Entry("ultrasound_fan_synthetic", grey(to_uint8(_ultrasound_fan(rng))), source)
    doppler = Image.fromarray(_dicom("examples_rgb_color.dcm").pixel_array, mode="RGB")
    yield Entry("ultrasound_doppler", doppler, "pydicom examples_rgb_color.dcm: colour Doppler")
    echo = Image.fromarray(_dicom("examples_ybr_color.dcm").pixel_array[0], mode="RGB")
    yield Entry("ultrasound_echo", echo, "pydicom examples_ybr_color.dcm frame 0: echocardiogram")
    abdomen = grey(stretch(_dicom("examples_overlay.dcm").pixel_array.astype(np.float32)))
    yield Entry("abdomen_mri", abdomen, "pydicom examples_overlay.dcm: axial MRI of the abdomen")
    pet = matplotlib.colormaps["hot"](stretch(_pet_like(rng, template), 0, 99.8) / 255.0)
    source = "template grey matter as uptake, 8 mm blur, noise, 'hot' colour map"
    yield Entry("pet_like_hot", Image.fromarray(to_uint8(pet[..., :3]), mode="RGB"), source)


# --- real scanners ------------------------------------------------------------------------------


def _nibabel_file(name: str) -> Path:
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data" / name


def _ras_volume(name: str) -> tuple[np.ndarray, np.ndarray]:
    """First volume of a nibabel test image with axes reordered to x right, y front, z up, and
    its voxel size (mm) in that order."""
    import nibabel
    from nibabel import orientations

    image = nibabel.load(_nibabel_file(name))
    data = np.asarray(image.dataobj, dtype=np.float32)
    while data.ndim > 3:
        data = data[..., 0]
    ornt = orientations.io_orientation(image.affine)
    zooms = np.zeros(3)
    zooms[ornt[:, 0].astype(int)] = image.header.get_zooms()[:3]
    return orientations.apply_orientation(data, ornt), zooms


def _view(volume: np.ndarray, zooms: np.ndarray, plane: str, index: int) -> Image.Image:
    """A slice as radiologists view it (top of the head or front at the top), square pixels,
    intensities stretched, enlarged to >= 128 px."""
    axis = NORMAL_AXIS[plane]
    where: list = [slice(None)] * 3
    where[axis] = index
    section = volume[tuple(where)].T[::-1]
    col_mm, row_mm = (zooms[a] for a in range(3) if a != axis)
    image = grey(stretch(section))
    if row_mm != col_mm:
        image = image.resize((image.width, round(image.height * row_mm / col_mm)))
    return upscale(image)


def real_scans(rng: np.random.Generator) -> Iterator[Entry]:
    """MRIs from real scanners in installed packages' sample and test data."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("s1045.ima.gz") as raw:
        # Big-endian: every high byte is then zero (values 0-215); little-endian reads x256.
        s1045 = np.frombuffer(raw.read(), ">u2").reshape(256, 256).astype(np.float32)
    source = "matplotlib sample_data/s1045.ima.gz: sagittal head T1, 256x256 big-endian uint16"
    yield Entry("s1045_sagittal_t1", grey(stretch(s1045)), source)
    epi, epi_mm = _ras_volume("example4d.nii.gz")
    for z in (6, 12, 18):
        source = f"nibabel tests/data/example4d.nii.gz: EPI brain, volume 0, axial slice {z}"
        yield Entry(f"example4d_epi_axial_{z}", _view(epi, epi_mm, "axial", z), source)
    anat, anat_mm = _ras_volume("anatomical.nii")
    for plane, index in (("axial", 8), ("axial", 16), ("coronal", 22), ("sagittal", 12)):
        source = f"nibabel tests/data/anatomical.nii: 2 mm T1 of part of a brain, {plane} {index}"
        yield Entry(f"anatomical_t1_{plane}_{index}", _view(anat, anat_mm, plane, index), source)
    tlrc, tlrc_mm = _ras_volume("scaled+tlrc.HEAD")
    source = "nibabel tests/data/scaled+tlrc (AFNI): 3 mm brain in Talairach space, axial 24"
    yield Entry("afni_tlrc_axial", _view(tlrc, tlrc_mm, "axial", 24), source)
    phantom, phantom_mm = _ras_volume("phantom_EPI_asc_CLEAR_2_1.PAR")
    source = "nibabel tests/data/phantom_EPI_asc_CLEAR_2_1.PAR/REC: Philips EPI of a phantom"
    yield Entry("philips_phantom_epi", _view(phantom, phantom_mm, "axial", 4), source)
    small = upscale(grey(stretch(_dicom("MR_small.dcm").pixel_array.astype(np.float32))))
    source = "pydicom MR_small.dcm: Toshiba axial MRI (NEMA WG04 MR1) at 64x64, enlarged"
    yield Entry("mr_small_dicom", small, source)


# --- the generator's slices, transformed ----------------------------------------------------------


def _head_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(pixels > 25)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def geometry(rng: np.random.Generator) -> Iterator[Entry]:
    """Generated slices in orientations and framings training never uses."""
    image, kind = _plane_slice(rng, "axial")
    yield Entry("rotated_90", grey(np.rot90(image)), f"{kind}, rotated 90 degrees")
    image, kind = _plane_slice(rng, "sagittal")
    yield Entry("rotated_180", grey(np.rot90(image, 2)), f"{kind}, rotated 180 degrees")
    image, kind = _plane_slice(rng, "coronal")
    yield Entry("upside_down", grey(image[::-1]), f"{kind}, flipped upside down")
    image, kind = _render(rng)
    rotated = grey(image).rotate(45, Image.Resampling.BILINEAR)
    yield Entry("rotated_45", rotated, f"{kind}, rotated 45 degrees (training: up to 12)")
    image, kind = _render(rng)
    r0, r1, c0, c1 = _head_box(image)
    quarter = grey(image[r0 : (r0 + r1) // 2, c0 : (c0 + c1) // 2]).resize((SIZE, SIZE))
    yield Entry("crop_quarter", quarter, f"{kind}, top-left quarter of the head enlarged")
    image, kind = _render(rng)
    frame = Image.new("L", (320, 320))
    frame.paste(grey(image).resize((72, 72), Image.Resampling.BILINEAR), (40, 190))
    yield Entry("small_in_frame", frame, f"{kind}, shrunk to 72 px in a black 320 px frame")
    mosaic = Image.new("L", (SIZE, SIZE))
    for k in range(4):
        mosaic.paste(grey(_render(rng)[0]).resize((128, 128)), (128 * (k % 2), 128 * (k // 2)))
    yield Entry("mosaic_2x2", mosaic, "four render_example slices tiled 2x2")
    image, kind = _render(rng)
    squashed = grey(image).resize((SIZE, 112), Image.Resampling.BILINEAR)
    yield Entry("squashed", squashed, f"{kind}, resized to 256x112 (aspect 2.3)")


def windowing(rng: np.random.Generator) -> Iterator[Entry]:
    """Generated slices with intensity mappings no scanner or viewer default gives."""
    import matplotlib

    image, kind = _render(rng)
    level = float(np.median(image[image > 40]))
    narrow = grey(to_uint8((image - (level - 12)) / 24))
    yield Entry("narrow_window", narrow, f"{kind}, window {level:.0f} +- 12 grey levels")
    image, kind = _render(rng)
    yield Entry("inverted", grey(255 - image), f"{kind}, negative")
    for gamma in (0.3, 3.0):
        image, kind = _render(rng)
        pixels = grey(to_uint8((image / 255.0) ** gamma))
        yield Entry(f"gamma_{gamma:.1f}".replace(".", "_"), pixels, f"{kind}, gamma {gamma}")
    image, kind = _render(rng)
    yield Entry("posterized_4", grey((image // 64) * 85), f"{kind}, posterised to 4 grey levels")
    image, kind = _render(rng)
    washed = grey((110 + image.astype(np.float32) * (40 / 255)).astype(np.uint8))
    yield Entry("washed_out", washed, f"{kind}, squeezed into grey levels 110-150")
    image, kind = _render(rng)
    wrapped = grey(((image.astype(np.uint16) * 5) % 256).astype(np.uint8))
    yield Entry("wrapped_overflow", wrapped, f"{kind}, x5 modulo 256 (a cast without scaling)")
    image, kind = _render(rng)
    jet = Image.fromarray(to_uint8(matplotlib.colormaps["jet"](image / 255.0)[..., :3]))
    yield Entry("jet_colormap", jet, f"{kind}, shown through the 'jet' colour map")
    image, kind = _render(rng)
    rank = np.argsort(np.argsort(image.ravel(), kind="stable"), kind="stable")
    equalized = grey(to_uint8(rank.reshape(image.shape) / rank.size))
    yield Entry("equalized", equalized, f"{kind}, histogram equalised")


# --- the generator, configured as training never is -------------------------------------------


def _dwi(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Diffusion-weighted EPI look: 96 px matrix, heavy Rician noise, an N/2 ghost."""
    low = np.asarray(grey(image).resize((96, 96), Image.Resampling.BOX), dtype=np.float32) / 255
    low = low + 0.1 * np.roll(low, 48, axis=0)
    real, imag = (0.07 * rng.standard_normal(low.shape) for _ in range(2))
    noisy = grey(to_uint8(np.hypot(low + real, imag)))
    return np.asarray(noisy.resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def _phase_wrap(image: np.ndarray, fov_rows: int) -> np.ndarray:
    """A phase field of view shorter than the head: what falls outside folds onto the far side."""
    margin = (image.shape[0] - fov_rows) // 2
    folded = image[margin : margin + fov_rows].astype(np.float32)
    folded[-margin:] += image[:margin]
    folded[:margin] += image[margin + fov_rows : margin + fov_rows + margin]
    return np.clip(folded, 0, 255).astype(np.uint8)


def unseen_configs(rng: np.random.Generator) -> Iterator[Entry]:
    """The generator with a contrast, head layers, slice or field of view training never draws."""
    template = load_template()
    pd = _mr_contrast("pd", (0, 0.5, 0.8, 0.76, 0.74, 0.63, 0.6), [0.8, 0.05, 0.75, 0.05, 0.9, 0.6])
    image, kind = _plane_slice(rng, "axial", contrast=pd)
    yield Entry("proton_density", grey(image), f"{kind}: CSF ~ grey > white, fat bright")
    dwi = _mr_contrast(
        "dwi", (0, 0.05, 0.1, 0.3, 0.55, 0.45, 0.43), [0.1, 0.02, 0.05, 0.02, 0.05, 0.1]
    )
    image, kind = _plane_slice(rng, "axial", contrast=dwi)
    source = f"{kind}: CSF dark, fat saturated, 96 px matrix, noisy, N/2 ghost"
    yield Entry("diffusion_epi", grey(_dwi(image, rng)), source)
    # Clear of the sella (axial z 40, sagittal x 98): a pituitary gland would float by the brain.
    for plane, index in (("axial", rng.integers(55, 130)), ("sagittal", rng.integers(108, 143))):
        stripped = _with_shell(sample_contrast(_child(rng)), [1] * 6, [0] * 6)
        maps = cut_slice(template, plane, int(index))
        image, kind = _render(rng, "notumor", contrast=stripped, slice_maps=maps, head_fill=0.75)
        yield Entry(f"skull_stripped_{plane}", grey(image), f"{kind}: brain only, no head layers")
    base = sample_contrast(_child(rng))
    fat_sat = _with_shell(base, [2, 1.5, 3, 1.5, 4, 1.8], [base.csf, 0.03, 0.06, 0.03, 0.04, 0.35])
    image, kind = _plane_slice(rng, "axial", contrast=fat_sat)
    yield Entry("fat_suppressed", grey(image), f"{kind}: marrow and scalp fat dark")
    base = sample_contrast(_child(rng))
    thick = _with_shell(base, [2, 1.5, 3, 1.5, 22, 3], [base.csf, 0.04, 0.6, 0.04, 0.85, 0.45])
    image, kind = _plane_slice(rng, "axial", contrast=thick)
    yield Entry("thick_scalp", grey(image), f"{kind}: 22 mm of scalp fat (training: 2-5)")
    image, kind = _render(rng, "notumor", slice_maps=_oblique_maps(template, 32.0, 18.0))
    yield Entry("oblique_plane", grey(image), f"{kind}: tilted 32 degrees pitch, 18 roll")
    outside = (("vertex", "axial", 150), ("skull_base", "axial", 14), ("lateral", "sagittal", 30))
    for what, plane, index in outside:
        maps = cut_slice(template, plane, index)
        image, kind = _render(rng, "notumor", slice_maps=maps, head_fill=_true_scale_fill(maps))
        low, high = template.slice_ranges[plane]
        yield Entry(what, grey(image), f"{kind}: slice {index}, usable {low}-{high}, true scale")
    image, kind = _render(rng, head_fill=0.3)
    yield Entry("tiny_head_fov", grey(image), f"{kind}: the head spans 30% of the frame")
    image, kind = _render(rng, "notumor", slice_maps=_neck_maps(template))
    yield Entry("neck_included", grey(image), f"{kind}, moved up, with a neck painted below")
    image, kind = _render(rng, head_fill=1.0)
    source = f"{kind}: phase field of view of 176 of 256 rows, the head wraps around"
    yield Entry("phase_wrap", grey(_phase_wrap(image, 176)), source)
