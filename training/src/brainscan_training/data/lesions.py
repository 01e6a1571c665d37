"""Tumours drawn into a slice where and how each class occurs, with intensities set relative to
the tissue around them (so a lesion stays visible whatever the contrast).

- glioma: intra-axial, centred in white matter; lobulated, frayed edge; heterogeneous core, often
  a necrotic centre and (T1) an enhancing rim; oedema spreading along white matter around it.
- meningioma: extra-axial, based on the dura (brain convexity or the falx at the midline); round,
  sharp-edged, homogeneous, clipped flat against the inner skull; pushes the brain away.
- pituitary: adenoma of the gland in the sella turcica, midline below the hypothalamus; grows
  upward out of the sella (macroadenoma) or is a small dark spot in the gland (microadenoma).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainscan_training.data.anatomy import (
    NORMAL_AXIS,
    SELLA_VOXEL,
    SliceMaps,
    Template,
    voxel_to_canvas,
)
from brainscan_training.data.contrast import T1_GREY, T1_WHITE, Contrast
from brainscan_training.data.shapes import Box, blob_level, local_mean, smooth_noise, soft_inside

# A normal pituitary gland: semi-axes (left-right, back-front, up-down) in mm.
NORMAL_GLAND_MM = (6.0, 4.5, 3.0)


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


def _blend(target: np.ndarray, value: np.ndarray, opacity: np.ndarray) -> None:
    target *= 1.0 - opacity
    target += value * opacity


def _towards(local: np.ndarray, level: float, fraction: float) -> np.ndarray:
    """Signal moved `fraction` of the way from the local tissue towards `level` (e.g. CSF)."""
    return local + (level - local) * fraction


# --- glioma -------------------------------------------------------------------------------------


def place_glioma(maps: SliceMaps, rng: np.random.Generator) -> Placement | None:
    """Centre a glioma in white matter deep enough that its core stays inside the brain."""
    radius = rng.uniform(9.0, 24.0)
    deep = maps.brain & (maps.signed_mm < -(0.6 * radius + 3.0)) & (maps.t1 > 0.7)
    candidates = np.flatnonzero(deep)
    if candidates.size == 0:
        return None
    row, col = np.unravel_index(rng.choice(candidates), deep.shape)
    return Placement(
        center=(float(row), float(col)),
        radius=radius,
        displaced_radius=radius * rng.uniform(0.15, 0.45),
        reach=radius * rng.uniform(0.6, 1.2),
    )


def paint_glioma(scene: Scene, place: Placement, rng: np.random.Generator) -> np.ndarray:
    """Paint oedema, core, rim and necrosis; return the tumour (core) mask on the canvas."""
    r = place.radius
    box = Box.around(place.center, 2.6 * r + 4, scene.image.shape)
    center = box.local(place.center)
    image, brain = scene.image[box.slices], scene.brain[box.slices]
    local = local_mean(image, brain, sigma=5.0)
    csf, is_t1 = scene.contrast.csf, scene.contrast.name == "t1"
    texture = smooth_noise(rng, box.shape, rng.uniform(1.5, 3.5))

    # Oedema follows white-matter tracts, so it is weighted by how white the tissue is.
    edema_level = blob_level(
        rng, box.shape, center, r * rng.uniform(1.4, 2.4), lobulation=0.45, roughness=0.35,
        noise_scale=5.0, elongation=rng.uniform(1.0, 1.6), angle=rng.uniform(0, np.pi),
    )  # fmt: skip
    whiteness = np.clip((scene.t1[box.slices] - T1_GREY) / (T1_WHITE - T1_GREY), 0, 1)
    edema = soft_inside(edema_level, 0.6) * brain * (0.35 + 0.65 * whiteness)
    edema *= rng.uniform(0.6, 1.0)
    if is_t1:
        edema_value = local * rng.uniform(0.8, 0.92)
    else:
        edema_value = _towards(local, csf, rng.uniform(0.45, 0.8))
    _blend(image, edema_value, edema)

    core_level = blob_level(
        rng, box.shape, center, r, lobulation=rng.uniform(0.15, 0.4),
        roughness=rng.uniform(0.12, 0.3), elongation=rng.uniform(1.0, 1.6),
        angle=rng.uniform(0, np.pi), noise_scale=rng.uniform(2.0, 4.0),
    )  # fmt: skip
    core = soft_inside(core_level, rng.uniform(0.25, 0.5)) * brain
    heterogeneity = 1.0 + rng.uniform(0.06, 0.15) * texture
    if is_t1:
        core_value = local * rng.uniform(0.6, 0.85) * heterogeneity
    else:
        core_value = _towards(local, csf, rng.uniform(0.4, 0.75)) * heterogeneity
    _blend(image, core_value, core)

    if is_t1 and rng.random() < 0.55:  # ring enhancement of a high-grade glioma after contrast
        rim_at, rim_width = rng.uniform(0.72, 0.9), rng.uniform(0.07, 0.15)
        rim = np.exp(-(((core_level - rim_at) / rim_width) ** 2)) * brain
        rim *= np.clip(0.75 + 0.35 * texture, 0, 1)
        _blend(image, local * rng.uniform(1.15, 1.45), rim.astype(np.float32))
    if rng.random() < 0.5:  # necrotic centre: fluid-like, dark on T1 and bright on T2
        necrosis_level = blob_level(
            rng, box.shape, center, r * rng.uniform(0.3, 0.55), lobulation=0.3, roughness=0.2
        )
        necrosis = soft_inside(necrosis_level, 0.4) * brain
        fluid = csf * rng.uniform(1.0, 1.6) if is_t1 else csf * rng.uniform(0.8, 0.95)
        _blend(image, np.float32(fluid) * heterogeneity, necrosis)

    mask = np.zeros(scene.image.shape, dtype=bool)
    mask[box.slices] = (core_level < 1.0) & (brain > 0.5)
    return mask


# --- meningioma ---------------------------------------------------------------------------------


def place_meningioma(maps: SliceMaps, rng: np.random.Generator) -> Placement | None:
    """Base a meningioma on the dura: at the brain convexity, or on the falx at the midline."""
    radius = rng.uniform(8.0, 26.0)
    on_falx = maps.midline_col is not None and rng.random() < 0.35
    if on_falx:
        col = maps.midline_col
        strip = maps.brain[:, col - 1 : col + 2].all(axis=1) & (
            maps.signed_mm[:, col] < -(0.5 * radius)
        )
        rows = np.flatnonzero(strip)
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
    """Paint a sharp, homogeneous, dura-based mass with a CSF cleft; return its mask."""
    r = place.radius
    box = Box.around(place.center, 1.8 * r + 4, scene.image.shape)
    center = box.local(place.center)
    image, brain = scene.image[box.slices], scene.brain[box.slices]
    signed = scene.maps.signed_mm[box.slices]
    contrast, csf = scene.contrast, scene.contrast.csf
    # Extra-axial: it cannot cross the inner skull, nor (on the falx) much of the other hemisphere.
    allowed = signed < 1.0
    if place.details["site"] == "falx":
        cols = np.arange(box.c0, box.c1)[None, :]
        margin = r * rng.uniform(0.0, 0.25)
        allowed = allowed & ((cols - place.details["base"][1]) * place.details["side"] > -margin)
    level = blob_level(
        rng, box.shape, center, r, lobulation=rng.uniform(0.02, 0.1), roughness=0.03,
        elongation=rng.uniform(1.0, 1.35), angle=rng.uniform(0, np.pi), noise_scale=4.0,
    )  # fmt: skip
    reference = contrast.level(T1_GREY) * rng.uniform(0.95, 1.05)
    local = 0.5 * local_mean(image, brain, sigma=6.0) + 0.5 * reference
    if contrast.name == "t1":
        enhanced = rng.random() < 0.9
        value = local * (rng.uniform(1.15, 1.45) if enhanced else rng.uniform(0.85, 0.97))
    else:
        value = _towards(local, csf, rng.uniform(0.15, 0.45))
    value = value * (1.0 + rng.uniform(0.02, 0.06) * smooth_noise(rng, box.shape, 4.0))

    if rng.random() < 0.6:  # CSF cleft: a thin rim of fluid between tumour and brain
        cleft = soft_inside(np.abs(level - 1.06) / 0.06, 0.5) * allowed
        _blend(image, np.full_like(image, csf), cleft * rng.uniform(0.4, 0.8))
    opacity = soft_inside(level, rng.uniform(0.05, 0.12)) * allowed
    _blend(image, value.astype(np.float32), opacity)

    mask = np.zeros(scene.image.shape, dtype=bool)
    mask[box.slices] = (level < 1.0) & allowed
    return mask


# --- pituitary ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PituitaryPlan:
    """A pituitary adenoma in 3-D (voxel centre, semi-axes in mm), decided before the slice."""

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    micro: bool


def plan_pituitary(rng: np.random.Generator) -> PituitaryPlan:
    """Size and place an adenoma in the sella; macroadenomas grow upward out of it."""
    x, y, z = SELLA_VOXEL
    if rng.random() < 0.2:  # microadenoma: a few millimetres, inside the gland
        semi = tuple(rng.uniform(2.5, 4.5, size=3))
        center = (x + rng.uniform(-3, 3), y + rng.uniform(-1.5, 1.5), z + rng.uniform(-1, 1))
        return PituitaryPlan(center=center, semi_axes=semi, micro=True)
    semi = (rng.uniform(6.0, 13.0), rng.uniform(5.0, 11.0), rng.uniform(5.0, 15.0))
    floor = z - 3.0  # the sella floor stops downward growth
    center = (x + rng.uniform(-1.5, 1.5), y + rng.uniform(-1.5, 1.5), floor + semi[2] * 0.9)
    return PituitaryPlan(center=center, semi_axes=semi, micro=False)


def slice_through(
    center: tuple[float, float, float],
    semi_axes: tuple[float, float, float],
    plane: str,
    rng: np.random.Generator,
) -> int:
    """A slice index of `plane` cutting the ellipsoid well inside its extent.

    Sagittal cuts keep 2 mm off the exact midline where the ellipsoid allows: the template's
    midline is the interhemispheric fissure, a blur of grey matter and CSF.
    """
    axis = NORMAL_AXIS[plane]
    reach = 0.55 * semi_axes[axis]
    nearest = 2.0 if plane == "sagittal" and reach > 2.5 else 0.0
    offset = rng.uniform(nearest, max(reach, nearest)) * rng.choice([-1.0, 1.0])
    return round(center[axis] + offset)


def ellipsoid_section(
    template: Template,
    maps: SliceMaps,
    center: tuple[float, float, float],
    semi_axes: tuple[float, float, float],
) -> tuple[tuple[float, float], float, float] | None:
    """Canvas centre and (row, col) semi-axes of an ellipsoid's cut by this slice, or None."""
    axis = NORMAL_AXIS[maps.plane]
    offset = (maps.index - center[axis]) / semi_axes[axis]
    if abs(offset) >= 0.95:
        return None
    shrink = float(np.sqrt(1.0 - offset**2))
    canvas_center = voxel_to_canvas(template, maps.plane, center)
    lateral, front_back, up_down = semi_axes
    row_semi, col_semi = {
        "axial": (front_back, lateral),
        "coronal": (up_down, lateral),
        "sagittal": (up_down, front_back),
    }[maps.plane]
    return canvas_center, row_semi * shrink, col_semi * shrink


def _paint_ellipse(
    scene: Scene,
    section: tuple[tuple[float, float], float, float],
    value_factor: float,
    rng: np.random.Generator,
    *,
    lobulation: float,
    texture: float,
    edge: float,
) -> np.ndarray:
    """Paint an elliptical mass relative to grey matter's signal; return its canvas mask."""
    center, row_semi, col_semi = section
    box = Box.around(center, 1.5 * max(row_semi, col_semi) + 3, scene.image.shape)
    level = blob_level(
        rng, box.shape, box.local(center), row_semi, lobulation=lobulation, roughness=0.04,
        elongation=col_semi / row_semi, angle=rng.uniform(-0.2, 0.2), noise_scale=3.0,
    )  # fmt: skip
    reference = scene.contrast.level(T1_GREY)
    value = reference * value_factor * (1 + texture * smooth_noise(rng, box.shape, 2.0))
    _blend(scene.image[box.slices], value.astype(np.float32), soft_inside(level, edge))
    mask = np.zeros(scene.image.shape, dtype=bool)
    mask[box.slices] = level < 1.0
    return mask


def paint_normal_gland(scene: Scene, template: Template, rng: np.random.Generator) -> None:
    """Every brain has a pituitary gland: draw it where the slice passes through the sella."""
    section = ellipsoid_section(template, scene.maps, SELLA_VOXEL, NORMAL_GLAND_MM)
    if section is None:
        return
    factor = rng.uniform(1.05, 1.25) if scene.contrast.name == "t1" else rng.uniform(0.9, 1.05)
    _paint_ellipse(scene, section, factor, rng, lobulation=0.05, texture=0.03, edge=0.3)


def place_pituitary(template: Template, maps: SliceMaps, plan: PituitaryPlan) -> Placement | None:
    """The adenoma's cut in this slice; a macroadenoma lifts the chiasm and hypothalamus."""
    section = ellipsoid_section(template, maps, plan.center, plan.semi_axes)
    if section is None:
        return None
    center, row_semi, col_semi = section
    displaced = 0.0 if plan.micro else 0.5 * min(row_semi, col_semi)
    return Placement(
        center=center,
        radius=max(row_semi, col_semi),
        displaced_radius=displaced,
        reach=6.0,
        details={"section": section, "micro": plan.micro},
    )


def paint_pituitary(
    scene: Scene, template: Template, place: Placement, rng: np.random.Generator
) -> np.ndarray:
    """Paint the adenoma (micro: a dark spot in an enhancing gland); return its mask."""
    is_t1 = scene.contrast.name == "t1"
    if place.details["micro"]:
        paint_normal_gland(scene, template, rng)
        factor = rng.uniform(0.6, 0.85) if is_t1 else rng.uniform(1.15, 1.4)
        return _paint_ellipse(
            scene, place.details["section"], factor, rng, lobulation=0.1, texture=0.05, edge=0.3
        )
    # Enhancing adenoma: brighter than white matter on T1, grey-like against bright CSF on T2.
    factor = rng.uniform(1.3, 1.7) if is_t1 else rng.uniform(1.05, 1.4)
    mask = _paint_ellipse(
        scene, place.details["section"], factor, rng, lobulation=rng.uniform(0.03, 0.15),
        texture=rng.uniform(0.05, 0.12), edge=0.2,
    )  # fmt: skip
    if rng.random() < 0.3:  # a cystic part: fluid signal inside the mass
        center, row_semi, col_semi = place.details["section"]
        shift = (rng.uniform(-0.3, 0.3) * row_semi, rng.uniform(-0.3, 0.3) * col_semi)
        cyst = ((center[0] + shift[0], center[1] + shift[1]), row_semi * 0.4, col_semi * 0.4)
        fluid = scene.contrast.csf / scene.contrast.level(T1_GREY)
        _paint_ellipse(scene, cyst, fluid * rng.uniform(0.9, 1.2), rng, lobulation=0.1,
                       texture=0.03, edge=0.4)  # fmt: skip
    return mask
