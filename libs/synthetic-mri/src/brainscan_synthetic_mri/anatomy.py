"""The MNI152 T1 template brain that synthetic slices are cut from, and its coordinate frames."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

PLANES = ("axial", "coronal", "sagittal")
# The skull-stripped MNI152 2009 T1 template inside the nilearn package, and nilearn's brain mask
# threshold on it (load_mni152_brain_mask).
TEMPLATE_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
BRAIN_THRESHOLD = 0.2
# Every slice is centred on a square canvas of CANVAS x CANVAS pixels at 1 mm per pixel.
CANVAS = 256
# Voxel index of the template's midline (MNI x = 0) and of the sella turcica, where the pituitary
# gland sits below the hypothalamus (about MNI 0, 2, -32; empty in the skull-stripped template).
MIDLINE_X = 98
SELLA_VOXEL = (98, 136, 40)
# Axis of the volume along which each plane is cut (volume axes: x left-right, y back-front, z up).
NORMAL_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
# Slices whose brain cross-section is smaller than this fraction of the largest are not used.
MIN_BRAIN_FRACTION = 0.35


@dataclass(frozen=True)
class Template:
    """The template volume with the maps that lesion placement and the head shell need."""

    t1: np.ndarray  # float32 (x, y, z), T1 intensities in [0, 1]
    brain: np.ndarray  # bool (x, y, z)
    signed_mm: np.ndarray  # float32 mm to the brain surface, positive outside, negative inside
    far_mm: float  # the largest distance outside the brain (fills the canvas around a slice)
    slice_ranges: dict[str, tuple[int, int]]  # usable slice indices per plane, inclusive
    affine: np.ndarray  # voxel -> MNI mm


@dataclass(frozen=True)
class SliceMaps:
    """One slice of the template centred on the canvas, oriented as radiologists view it."""

    plane: str
    index: int
    t1: np.ndarray  # float32 canvas
    brain: np.ndarray  # bool canvas
    signed_mm: np.ndarray  # float32 canvas, distance to the brain surface (outside positive)
    midline_col: int | None  # canvas column of the falx on axial and coronal slices
    mni_mm: float  # MNI coordinate of the slice along its normal


@lru_cache(maxsize=1)
def load_template() -> Template:
    """Load the template shipped inside the nilearn package (no network) once per process.

    Same data and brain mask as nilearn.datasets.load_mni152_template(resolution=1) and
    load_mni152_brain_mask(), read with nibabel directly: importing nilearn.datasets takes ~3 s,
    which every worker process would pay.
    """
    import nibabel
    import nilearn

    image = nibabel.load(Path(nilearn.__file__).parent / "datasets" / "data" / TEMPLATE_FILE)
    t1 = np.asarray(image.get_fdata(), dtype=np.float32)
    t1 /= t1.max()
    brain = t1 > BRAIN_THRESHOLD
    signed_mm = _signed_distance_mm(brain)
    return Template(
        t1=t1,
        brain=brain,
        signed_mm=signed_mm,
        far_mm=float(signed_mm.max()),
        slice_ranges=_slice_ranges(brain),
        affine=np.asarray(image.affine),
    )


def _signed_distance_mm(brain: np.ndarray) -> np.ndarray:
    """Signed distance to the brain surface, computed at 2 mm and upsampled: 10x faster."""
    coarse = brain[::2, ::2, ::2]
    signed = ndi.distance_transform_edt(~coarse) - ndi.distance_transform_edt(coarse)
    fine = ndi.zoom((2.0 * signed).astype(np.float32), 2, order=1)
    return np.ascontiguousarray(fine[: brain.shape[0], : brain.shape[1], : brain.shape[2]])


def _slice_ranges(brain: np.ndarray) -> dict[str, tuple[int, int]]:
    ranges = {}
    for plane, axis in NORMAL_AXIS.items():
        other = tuple(a for a in range(3) if a != axis)
        area = brain.sum(axis=other)
        usable = np.flatnonzero(area >= MIN_BRAIN_FRACTION * area.max())
        ranges[plane] = (int(usable[0]), int(usable[-1]))
    return ranges


def _to_display(section: np.ndarray) -> np.ndarray:
    """Volume section (horizontal axis first) -> image rows top-down."""
    return section.T[::-1]


def _offsets(shape: tuple[int, int]) -> tuple[int, int]:
    return (CANVAS - shape[0]) // 2, (CANVAS - shape[1]) // 2


def _section(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    # Basic indexing is a view; np.take would copy through the whole volume (15 ms).
    where: list = [slice(None)] * 3
    where[NORMAL_AXIS[plane]] = index
    return _to_display(volume[tuple(where)])


def _on_canvas(section: np.ndarray, fill: float) -> np.ndarray:
    canvas = np.full((CANVAS, CANVAS), fill, dtype=section.dtype)
    r0, c0 = _offsets(section.shape)
    canvas[r0 : r0 + section.shape[0], c0 : c0 + section.shape[1]] = section
    return canvas


def cut_slice(template: Template, plane: str, index: int) -> SliceMaps:
    """Cut slice `index` along `plane` and centre it on the canvas."""
    t1 = _section(template.t1, plane, index)
    midline = None
    if plane != "sagittal":
        midline = voxel_to_canvas(template, plane, (MIDLINE_X, 0, 0))[1]
    return SliceMaps(
        plane=plane,
        index=index,
        t1=_on_canvas(t1, 0.0),
        brain=_on_canvas(_section(template.brain, plane, index), False),
        signed_mm=_on_canvas(_section(template.signed_mm, plane, index), template.far_mm),
        midline_col=midline,
        mni_mm=float(template.affine[NORMAL_AXIS[plane], 3] + index),
    )


def voxel_to_canvas(
    template: Template, plane: str, voxel: tuple[float, float, float]
) -> tuple[float, float]:
    """Canvas (row, col) of a voxel position projected onto a slice of `plane`."""
    x, y, z = voxel
    nx, ny, nz = template.t1.shape
    if plane == "axial":  # rows: front (y high) at the top; cols: x
        section_shape, row, col = (ny, nx), (ny - 1) - y, x
    elif plane == "coronal":  # rows: top (z high) first; cols: x
        section_shape, row, col = (nz, nx), (nz - 1) - z, x
    else:  # sagittal, rows: z top first; cols: y (back on the left)
        section_shape, row, col = (nz, ny), (nz - 1) - z, y
    r0, c0 = _offsets(section_shape)
    return row + r0, col + c0
