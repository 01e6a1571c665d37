"""Lesions look and sit where their class says: checked on unaugmented renders (canvas frame)."""

from __future__ import annotations

import numpy as np
import pytest
from brainscan_synthetic_mri.anatomy import SELLA_VOXEL, cut_slice, load_template, voxel_to_canvas
from brainscan_synthetic_mri.contrast import T1_WHITE
from brainscan_synthetic_mri.lesions import FISSURE_T1, falx_rows, place_meningioma
from brainscan_synthetic_mri.sella import plan_pituitary
from brainscan_synthetic_mri.synthetic import CLASSES, RenderedImage, render_example
from scipy import ndimage as ndi

SEEDS = range(12)
# With augment=False at 256 px the output is the 1 mm canvas itself.
SIZE = 256


def renders(class_name: str) -> list[RenderedImage]:
    return [
        render_example(class_name, np.random.default_rng([5, s]), SIZE, augment=False)
        for s in SEEDS
    ]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[RenderedImage]]:
    return {class_name: renders(class_name) for class_name in CLASSES}


def centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


def ring_contrast(r: RenderedImage) -> float:
    """Mean grey level inside the lesion minus that of a 4-pixel ring of brain around it."""
    ring = ndi.binary_dilation(r.lesion_mask, iterations=4) & ~r.lesion_mask & r.brain_mask
    if not ring.any():  # e.g. a pituitary adenoma below the brain: compare with its surroundings
        ring = ndi.binary_dilation(r.lesion_mask, iterations=4) & ~r.lesion_mask
    return float(r.image[r.lesion_mask].mean() - r.image[ring].mean())


def test_notumor_has_no_lesion(rendered):
    assert all(not r.lesion_mask.any() for r in rendered["notumor"])


@pytest.mark.parametrize("class_name", ["glioma", "meningioma", "pituitary"])
def test_each_tumour_is_in_its_slice_and_stands_out(rendered, class_name):
    contrasts = []
    for r in rendered[class_name]:
        assert r.lesion_mask.sum() >= 10, (class_name, r.plane, r.slice_mm)
        contrasts.append(abs(ring_contrast(r)))
    # Relative intensities keep nearly every lesion visible, on T1 and T2 alike.
    assert np.mean(np.asarray(contrasts) > 6) >= 0.8, contrasts


def test_glioma_is_intra_axial(rendered):
    for r in rendered["glioma"]:
        assert (r.brain_mask[r.lesion_mask]).mean() > 0.97


def outline_irregularity(mask: np.ndarray) -> float:
    """Spread of the outline's distance from the centre, relative: 0.02 for a disc."""
    filled = ndi.binary_fill_holes(mask)
    outline = np.argwhere(filled & ~ndi.binary_erosion(filled))
    distance = np.linalg.norm(outline - centroid(filled), axis=1)
    return float(distance.std() / distance.mean())


def test_glioma_is_heterogeneous_and_irregular(rendered):
    irregularity = []
    for r in rendered["glioma"]:
        assert r.image[r.lesion_mask].std() > 4  # not a constant-intensity disc
        irregularity.append(outline_irregularity(r.lesion_mask))
    # a pixel disc scores 0.02, an ellipse of axes 1:1.3 about 0.10
    assert min(irregularity) > 0.06 and np.mean(irregularity) > 0.18, irregularity


def test_meningioma_is_dural_based(rendered):
    """It touches the brain's outer surface (convexity) or the falx at the midline."""
    midline = voxel_to_canvas(load_template(), "axial", (SELLA_VOXEL[0], 0, 0))[1]
    for r in rendered["meningioma"]:
        near = ndi.binary_dilation(r.lesion_mask, iterations=3)
        touches_surface = (near & ~r.brain_mask & ~r.lesion_mask).any()
        cols = np.flatnonzero(near.any(axis=0))
        touches_falx = r.plane != "sagittal" and cols.min() <= midline <= cols.max()
        assert touches_surface or touches_falx, (r.plane, r.slice_mm)


def test_pituitary_is_midline_at_the_sella(rendered):
    template = load_template()
    for r in rendered["pituitary"]:
        sella = np.asarray(voxel_to_canvas(template, r.plane, SELLA_VOXEL))
        # within a macroadenoma's size of the sella, on a low slice (the sella is at MNI z -32;
        # a suprasellar extension reaches a few centimetres higher, below the ventricles)
        assert np.linalg.norm(centroid(r.lesion_mask) - sella) < 20, (r.plane, r.slice_mm)
        if r.plane == "axial":
            assert r.slice_mm < -5
        else:
            brain_rows = np.flatnonzero(r.brain_mask.any(axis=1))
            assert centroid(r.lesion_mask)[0] > (brain_rows[0] + brain_rows[-1]) / 2


@pytest.mark.parametrize("class_name", ["glioma", "meningioma"])
def test_positions_and_sizes_vary(rendered, class_name):
    centres = np.array([centroid(r.lesion_mask) for r in rendered[class_name]])
    areas = np.array([r.lesion_mask.sum() for r in rendered[class_name]])
    assert centres.std(axis=0).min() > 10
    assert areas.max() > 2 * areas.min()


def test_augmented_images_keep_their_lesion_in_view():
    for class_name in ("glioma", "meningioma", "pituitary"):
        for seed in range(10):
            r = render_example(class_name, np.random.default_rng([6, seed]), 96)
            assert r.lesion_mask.any(), (class_name, seed)
            assert r.image.shape == r.lesion_mask.shape == r.brain_mask.shape


def test_planes_and_contrasts_vary():
    seen = [render_example("notumor", np.random.default_rng(s), 64) for s in range(40)]
    assert {r.plane for r in seen} == {"axial", "coronal", "sagittal"}
    assert {r.contrast for r in seen} == {"t1c", "t2", "flair"}


def brain_around(r: RenderedImage, margin: int = 6) -> np.ndarray:
    """Brain pixels away from the lesion."""
    return r.brain_mask & ~ndi.binary_dilation(r.lesion_mask, iterations=margin)


def on_post_contrast_t1(rendered, class_name: str) -> list[RenderedImage]:
    chosen = [r for r in rendered[class_name] if r.contrast == "t1c"]
    assert len(chosen) >= 4  # most images are post-contrast T1
    return chosen


def test_post_contrast_meningiomas_enhance_above_the_brain(rendered):
    bright = [
        np.median(r.image[r.lesion_mask]) > np.percentile(r.image[brain_around(r)], 99)
        for r in on_post_contrast_t1(rendered, "meningioma")
    ]
    assert np.mean(bright) >= 0.8, bright


def test_post_contrast_gliomas_mostly_enhance_around_a_darker_centre(rendered):
    rings = []
    for r in on_post_contrast_t1(rendered, "glioma"):
        radius = np.sqrt(r.lesion_mask.sum() / np.pi)
        inner = ndi.binary_erosion(r.lesion_mask, iterations=max(2, int(0.3 * radius)))
        wall = r.lesion_mask & ~inner
        enhances = np.percentile(r.image[wall], 95) > np.percentile(r.image[brain_around(r)], 99)
        rings.append(bool(enhances and np.median(r.image[inner]) < np.median(r.image[wall])))
    assert np.mean(rings) >= 0.5, rings


def test_macroadenomas_grow_up_out_of_the_sella_many_as_a_snowman():
    plans = [plan_pituitary(np.random.default_rng(s)) for s in range(400)]
    assert 0.05 < np.mean([p.micro for p in plans]) < 0.15
    snowmen = [p for p in plans if len(p.parts) == 2]
    assert 0.4 < len(snowmen) / len(plans) < 0.6
    floor = SELLA_VOXEL[2] - 3.0
    for plan in plans:
        lowest = min(part.center[2] - part.semi_axes[2] for part in plan.parts)
        assert lowest > floor - 2.0  # the sella floor stops it
    for plan in snowmen:
        low, high = plan.parts
        assert high.center[2] > low.center[2] and high.semi_axes[0] >= low.semi_axes[0]
        # one mass with a waist: the wider upper part overlaps the top of the lower one
        assert high.center[2] - high.semi_axes[2] < low.center[2] + low.semi_axes[2]


def test_falx_runs_in_from_the_edge_and_stops_at_the_corpus_callosum():
    template = load_template()
    through_ventricles = round(18 - template.affine[2, 3])  # axial MNI z = +18 mm
    maps = cut_slice(template, "axial", through_ventricles)
    col, falx = maps.midline_col, falx_rows(maps)
    inside = np.flatnonzero(maps.brain[:, col])
    assert falx[inside[0]] and falx[inside[-1]]  # front and back ends of the fissure
    assert (maps.t1[falx, col] < FISSURE_T1).all()
    callosum = inside[maps.t1[inside, col] > T1_WHITE]
    assert callosum.size and not falx[callosum].any()
    bases = []
    for seed in range(60):
        placement = place_meningioma(maps, np.random.default_rng(seed))
        if placement is not None and placement.details["site"] == "falx":
            bases.append(int(placement.details["base"][0]))
    assert bases and falx[bases].all()
