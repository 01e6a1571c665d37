"""Tumours drawn into a slice where and how each class occurs, as they look on the Kaggle set's
mostly post-contrast T1 images (and on T2 and FLAIR).

- glioma: intra-axial, centred in white matter; lobulated, frayed edge; a heterogeneous core that
  is dark on T1 and bright on T2/FLAIR, mostly with an irregular enhancing ring around a necrotic
  centre (high grade) or patchy enhancement; oedema spreading along white matter around it.
- meningioma: extra-axial, based on the dura (brain convexity or the falx at the midline); round,
  sharp-edged, enhancing brightly and homogeneously, often with a dural tail; clipped flat against
  the inner skull; pushes the brain away, sometimes with oedema in it.
- pituitary: adenoma in the sella turcica, midline below the hypothalamus (see sella.py).

Non-enhancing signal is set relative to the tissue around the lesion, so it stays visible on any
contrast; enhancing tissue takes the contrast's enhancement level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainscan_synthetic_mri.anatomy import SliceMaps
from brainscan_synthetic_mri.contrast import T1_GREY, T1_WHITE, Contrast
from brainscan_synthetic_mri.shapes import (
    Box,
    blob_level,
    fade_within,
    local_mean,
    smooth_noise,
    soft_inside,
)


@dataclass
class Scene:
    """The slice being painted: image and tissue maps on the canvas (after any mass effect)."""

    maps: SliceMaps
    contrast: Contrast
    image: np.ndarray  # float32 signal, painted in place
    brain: np.ndarray  # float32 brain fraction
    t1: np.ndarray  # float32 template T1 value of the tissue now at each pixel


@dataclass(frozen=True)
class Placement:
    """Where a lesion goes on the canvas and how far it pushes the tissue around it."""

    center: tuple[float, float]
    radius: float
    displaced_radius: float
    reach: float
    details: dict = field(default_factory=dict)


def blend(target: np.ndarray, value: np.ndarray | float, opacity: np.ndarray) -> None:
    """Paint `value` over `target` in place with per-pixel `opacity` in [0, 1]."""
    target *= 1.0 - opacity
    target += value * opacity


def towards(local: np.ndarray, level: float, fraction: float) -> np.ndarray:
    """Signal moved `fraction` of the way from the local tissue towards `level` (e.g. oedema)."""
    return local + (level - local) * fraction


def free_fluid(contrast: Contrast, rng: np.random.Generator) -> float:
    """Necrotic or cystic fluid: dark on T1, bright on T2, between CSF and oedema on FLAIR."""
    if contrast.name == "flair":  # proteinaceous fluid is not fully nulled
        return float(towards(np.float32(contrast.csf), contrast.edema, rng.uniform(0.3, 0.7)))
    return contrast.csf * (rng.uniform(1.0, 1.5) if contrast.is_t1 else rng.uniform(0.85, 1.0))


# --- glioma -------------------------------------------------------------------------------------


def place_glioma(maps: SliceMaps, rng: np.random.Generator) -> Placement | None:
    """Centre a glioma in white matter deep enough that its core stays inside the brain."""
    radius = rng.uniform(12.0, 30.0)
    deep = maps.brain & (maps.signed_mm < -(0.5 * radius + 2.0)) & (maps.t1 > 0.7)
    candidates = np.flatnonzero(deep)
    if candidates.size == 0:
        return None
    row, col = np.unravel_index(rng.choice(candidates), deep.shape)
    return Placement(
        center=(float(row), float(col)),
        radius=radius,
        displaced_radius=radius * rng.uniform(0.3, 0.6),
        reach=radius * rng.uniform(0.6, 1.2),
    )


def paint_glioma(scene: Scene, place: Placement, rng: np.random.Generator) -> np.ndarray:
    """Paint oedema, core, enhancement and necrosis; return the tumour (core) mask."""
    r = place.radius
    half = 2.4 * r + 16
    box = Box.around(place.center, half, scene.image.shape)
    center = box.local(place.center)
    image, brain = scene.image[box.slices], scene.brain[box.slices]
    local = local_mean(image, brain, sigma=5.0)
    contrast = scene.contrast
    texture = smooth_noise(rng, box.shape, rng.uniform(1.5, 3.5))

    # Oedema reaches a few centimetres beyond the tumour, following white-matter tracts (so it
    # is weighted by how white the tissue is).
    edema_radius = r + rng.uniform(0.3, 1.0) * min(r, 20.0) + 3.0
    edema_level = blob_level(
        rng, box.shape, center, edema_radius, lobulation=0.45, roughness=0.35,
        noise_scale=5.0, elongation=rng.uniform(1.0, 1.6), angle=rng.uniform(0, np.pi),
    )  # fmt: skip
    whiteness = np.clip((scene.t1[box.slices] - T1_GREY) / (T1_WHITE - T1_GREY), 0, 1)
    edema = soft_inside(edema_level, 0.6) * brain * (0.35 + 0.65 * whiteness)
    edema *= rng.uniform(0.7, 1.0) * fade_within(box, place.center, half)
    if contrast.is_t1:
        edema_value = local * rng.uniform(0.78, 0.9)
    else:
        edema_value = towards(local, contrast.edema, rng.uniform(0.5, 0.85))
    blend(image, edema_value, edema)

    core_level = blob_level(
        rng, box.shape, center, r, lobulation=rng.uniform(0.15, 0.4),
        roughness=rng.uniform(0.12, 0.3), elongation=rng.uniform(1.0, 1.6),
        angle=rng.uniform(0, np.pi), noise_scale=rng.uniform(2.0, 4.0),
    )  # fmt: skip
    core = soft_inside(core_level, rng.uniform(0.25, 0.5)) * brain
    heterogeneity = 1.0 + rng.uniform(0.08, 0.18) * texture
    if contrast.is_t1:
        core_value = local * rng.uniform(0.55, 0.8) * heterogeneity
    else:
        core_value = towards(local, contrast.edema, rng.uniform(0.55, 0.85)) * heterogeneity
    blend(image, core_value, core)

    # After gadolinium a high-grade glioma enhances as an irregular ring around necrosis, or in
    # patches; a low-grade one (about one in ten here) does not enhance.
    pattern = rng.choice(["ring", "patchy", "none"], p=[0.7, 0.2, 0.1]) if contrast.is_t1 else ""
    enhancing = np.float32(contrast.enhancing * rng.uniform(0.85, 1.0)) * (1 + 0.06 * texture)
    if pattern == "ring":  # a thick, irregular wall around a necrotic centre
        inner = rng.uniform(0.5, 0.75)
        wall = soft_inside(core_level, 0.15) * (1.0 - soft_inside(core_level / inner, 0.25))
        wall *= np.clip(0.8 + 0.3 * texture, 0.4, 1.0) * brain
        blend(image, enhancing, wall.astype(np.float32))
        if rng.random() < 0.85:
            necrosis = soft_inside(core_level / (inner * 0.9), 0.3) * brain
            blend(image, np.float32(free_fluid(contrast, rng)) * heterogeneity, necrosis)
    elif pattern == "patchy":
        spots = smooth_noise(rng, box.shape, rng.uniform(2.5, 4.5))
        patches = np.clip((spots - rng.uniform(0.0, 0.6)) / 0.4, 0, 1) * core
        blend(image, enhancing, patches.astype(np.float32))
    if pattern != "ring" and rng.random() < 0.3:  # a necrotic or cystic centre
        necrosis_level = blob_level(
            rng, box.shape, center, r * rng.uniform(0.3, 0.55), lobulation=0.3, roughness=0.2
        )
        necrosis = soft_inside(necrosis_level, 0.4) * brain
        blend(image, np.float32(free_fluid(contrast, rng)) * heterogeneity, necrosis)

    mask = np.zeros(scene.image.shape, dtype=bool)
    mask[box.slices] = (core_level < 1.0) & (brain > 0.5)
    return mask


# Template T1 below which the midline is the fissure (CSF and cortex), not white or deep grey.
FISSURE_T1 = 0.58


# --- meningioma ---------------------------------------------------------------------------------


def place_meningioma(maps: SliceMaps, rng: np.random.Generator) -> Placement | None:
    """Base a meningioma on the dura: at the brain convexity, or on the falx at the midline."""
    radius = rng.uniform(10.0, 28.0)
    on_falx = maps.midline_col is not None and rng.random() < 0.3
    if on_falx:
        col = maps.midline_col
        rows = np.flatnonzero(falx_rows(maps) & (maps.signed_mm[:, col] < -(0.5 * radius)))
        if rows.size == 0:
            return None
        base = (float(rng.choice(rows)), float(col))
        side = rng.choice([-1.0, 1.0])
        center = (base[0], base[1] + side * radius * rng.uniform(0.35, 0.75))
        details = {"site": "falx", "base": base, "side": side}
    else:
        edge = maps.brain & (maps.signed_mm > -1.5)
        candidates = np.flatnonzero(edge)
        if candidates.size == 0:
            return None
        row, col = np.unravel_index(rng.choice(candidates), edge.shape)
        inward = _inward_normal(maps.signed_mm, row, col)
        inset = radius * rng.uniform(0.15, 0.55)
        base = (float(row), float(col))
        center = (row + inward[0] * inset, col + inward[1] * inset)
        details = {"site": "convexity", "base": base}
    return Placement(
        center=center,
        radius=radius,
        displaced_radius=radius * rng.uniform(0.6, 0.9),
        reach=radius * rng.uniform(0.5, 1.0),
        details=details,
    )


def falx_rows(maps: SliceMaps) -> np.ndarray:
    """Rows of the midline column where the falx is: the interhemispheric fissure, followed in
    from the brain's edge (front and back on axial cuts, the top on coronal ones) until the
    corpus callosum or deep grey matter closes it."""
    col = maps.midline_col
    fissure = maps.brain[:, col - 1 : col + 2].all(axis=1) & (maps.t1[:, col] < FISSURE_T1)
    inside = np.flatnonzero(maps.brain[:, col])
    falx = np.zeros(maps.brain.shape[0], dtype=bool)
    if inside.size == 0:
        return falx
    starts = [(inside[0], 1)] + ([(inside[-1], -1)] if maps.plane == "axial" else [])
    for row, step in starts:
        while 0 <= row < falx.size and fissure[row]:
            falx[row] = True
            row += step
    return falx


def _inward_normal(signed_mm: np.ndarray, row: int, col: int) -> tuple[float, float]:
    r0, r1 = max(row - 3, 0), min(row + 4, signed_mm.shape[0])
    c0, c1 = max(col - 3, 0), min(col + 4, signed_mm.shape[1])
    patch = signed_mm[r0:r1, c0:c1].astype(np.float32)
    grad_r, grad_c = np.gradient(patch)
    g = np.array([grad_r.mean(), grad_c.mean()])
    norm = np.linalg.norm(g)
    if norm < 1e-6:
        return (0.0, 0.0)
    return (-g[0] / norm, -g[1] / norm)


def paint_meningioma(scene: Scene, place: Placement, rng: np.random.Generator) -> np.ndarray:
    """Paint a sharp, homogeneous, dura-based mass (cleft, tail, oedema); return its mask."""
    r = place.radius
    contrast = scene.contrast
    enhanced = contrast.is_t1 and rng.random() < 0.95
    tail = enhanced and rng.random() < 0.65
    half = (2.6 if tail else 2.0) * r + 4
    box = Box.around(place.center, half, scene.image.shape)
    center = box.local(place.center)
    image, brain = scene.image[box.slices], scene.brain[box.slices]
    signed = scene.maps.signed_mm[box.slices]
    falx = place.details["site"] == "falx"
    rows = np.arange(box.r0, box.r1, dtype=np.float32)[:, None]
    cols = np.arange(box.c0, box.c1, dtype=np.float32)[None, :]
    # Extra-axial: it cannot cross the inner skull, nor (on the falx) much of the other hemisphere.
    allowed = signed < 1.0
    if falx:
        margin = r * rng.uniform(0.0, 0.25)
        allowed = allowed & ((cols - place.details["base"][1]) * place.details["side"] > -margin)
    level = blob_level(
        rng, box.shape, center, r, lobulation=rng.uniform(0.02, 0.1), roughness=0.03,
        elongation=rng.uniform(1.0, 1.35), angle=rng.uniform(0, np.pi), noise_scale=4.0,
    )  # fmt: skip
    local = 0.5 * local_mean(image, brain, sigma=6.0) + 0.5 * contrast.level(T1_GREY)
    if enhanced:
        value = np.full_like(image, contrast.enhancing * rng.uniform(0.85, 1.0))
    elif contrast.is_t1:
        value = local * rng.uniform(0.8, 0.92)
    else:
        value = towards(local, contrast.edema, rng.uniform(0.4, 0.7))
    value = value * (1.0 + rng.uniform(0.02, 0.06) * smooth_noise(rng, box.shape, 4.0))

    if rng.random() < 0.35:  # vasogenic oedema in the brain next to a larger meningioma
        edema_level = level / rng.uniform(1.3, 1.8) + 0.25 * smooth_noise(rng, box.shape, 5.0)
        edema = soft_inside(edema_level, 0.5) * brain * rng.uniform(0.6, 1.0)
        edema *= fade_within(box, place.center, half)
        if contrast.is_t1:
            edema_value = image * rng.uniform(0.85, 0.93)
        else:
            edema_value = towards(image, contrast.edema, rng.uniform(0.4, 0.75))
        blend(image, edema_value, edema)
    if tail:  # dural tail: the dura next to the base enhances, thinning away from the tumour
        base_r, base_c = place.details["base"]
        distance = np.hypot(rows - base_r, cols - base_c)
        taper = r * rng.uniform(0.4, 0.9)
        fade = np.exp(-np.maximum(distance - 0.8 * r, 0.0) / taper)
        fade *= fade_within(box, place.center, half)
        if falx:
            band = np.clip(1.6 - np.abs(cols - base_c), 0, 1) * (signed < 0)
        else:
            band = np.clip(1.5 - np.abs(signed - 0.8), 0, 1)
        blend(image, value * 0.9, (band * fade * rng.uniform(0.6, 0.9)).astype(np.float32))
    if rng.random() < 0.6:  # CSF cleft: a thin rim of fluid between tumour and brain
        cleft = soft_inside(np.abs(level - 1.06) / 0.06, 0.5) * allowed
        blend(image, np.float32(contrast.csf), cleft * rng.uniform(0.4, 0.8))
    opacity = soft_inside(level, rng.uniform(0.05, 0.12)) * allowed
    blend(image, value.astype(np.float32), opacity)
    if not contrast.is_t1 and rng.random() < 0.5:  # T2-dark rim: displaced dura and vessels
        rim = np.exp(-(((level - 0.96) / 0.04) ** 2)) * allowed
        blend(
            image, local * rng.uniform(0.4, 0.6), (rim * rng.uniform(0.5, 0.8)).astype(np.float32)
        )

    mask = np.zeros(scene.image.shape, dtype=bool)
    mask[box.slices] = (level < 1.0) & allowed
    return mask
