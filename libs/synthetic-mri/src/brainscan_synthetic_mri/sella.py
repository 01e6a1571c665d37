"""The sella turcica: the normal pituitary gland every head has, and pituitary adenomas.

An adenoma is decided in 3-D first (ellipsoids around the sella) and the slice is then cut through
it. Macroadenomas (nine in ten here, as in the Kaggle set) enhance and grow upward out of the
sella; many are "snowman" shaped: an intrasellar part, a waist at the diaphragma sellae and a
wider suprasellar part. Microadenomas are a few millimetres inside the gland.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainscan_synthetic_mri.anatomy import (
    NORMAL_AXIS,
    SELLA_VOXEL,
    SliceMaps,
    Template,
    voxel_to_canvas,
)
from brainscan_synthetic_mri.contrast import T1_GREY
from brainscan_synthetic_mri.lesions import Placement, Scene, blend, free_fluid
from brainscan_synthetic_mri.shapes import Box, blob_level, smooth_noise, soft_inside

# A normal pituitary gland: semi-axes (left-right, back-front, up-down) in mm.
NORMAL_GLAND_MM = (6.0, 4.5, 3.0)
MICROADENOMA_SHARE = 0.1
SNOWMAN_SHARE = 0.55

Section = tuple[tuple[float, float], float, float]  # canvas centre, row and column semi-axes


@dataclass(frozen=True)
class Ellipsoid:
    center: tuple[float, float, float]  # voxel
    semi_axes: tuple[float, float, float]  # mm (= voxels): left-right, back-front, up-down


@dataclass(frozen=True)
class PituitaryPlan:
    """A pituitary adenoma in 3-D, decided before the slice: one or two ellipsoids."""

    parts: tuple[Ellipsoid, ...]
    micro: bool


def plan_pituitary(rng: np.random.Generator) -> PituitaryPlan:
    """Size and place an adenoma in the sella; macroadenomas grow upward out of it."""
    x, y, z = SELLA_VOXEL
    if rng.random() < MICROADENOMA_SHARE:  # a few millimetres, inside the gland
        center = (x + rng.uniform(-3, 3), y + rng.uniform(-1.5, 1.5), z + rng.uniform(0, 1))
        semi = (rng.uniform(3.0, 4.5), rng.uniform(3.0, 4.5), rng.uniform(2.5, 3.5))
        return PituitaryPlan((Ellipsoid(center, semi),), True)
    floor = z - 3.0  # the sella floor stops downward growth
    if rng.random() >= SNOWMAN_SHARE:
        semi = (rng.uniform(8.0, 15.0), rng.uniform(7.0, 13.0), rng.uniform(8.0, 16.0))
        center = (x + rng.uniform(-1.5, 1.5), y + rng.uniform(-1.5, 1.5), floor + semi[2] * 0.9)
        return PituitaryPlan((Ellipsoid(center, semi),), False)
    # Snowman: the sella's walls hold the lower part narrow; above the waist it spreads.
    low = (rng.uniform(6.0, 9.0), rng.uniform(5.5, 8.5), rng.uniform(4.5, 7.0))
    low_center = (x + rng.uniform(-1, 1), y + rng.uniform(-1, 1), floor + low[2] * 0.9)
    high = (rng.uniform(9.0, 16.0), rng.uniform(8.0, 13.0), rng.uniform(6.0, 11.0))
    top_of_low = low_center[2] + low[2]
    high_center = (
        low_center[0] + rng.uniform(-2, 2),
        low_center[1] + rng.uniform(-2, 2),
        top_of_low + high[2] * rng.uniform(0.4, 0.7),
    )
    return PituitaryPlan((Ellipsoid(low_center, low), Ellipsoid(high_center, high)), False)


def slice_through(part: Ellipsoid, plane: str, rng: np.random.Generator) -> int:
    """A slice index of `plane` cutting the ellipsoid well inside its extent.

    Sagittal cuts keep 2 mm off the exact midline where the ellipsoid allows: the template's
    midline is the interhemispheric fissure, a blur of grey matter and CSF.
    """
    axis = NORMAL_AXIS[plane]
    reach = 0.55 * part.semi_axes[axis]
    nearest = 2.0 if plane == "sagittal" and reach > 2.5 else 0.0
    offset = rng.uniform(nearest, max(reach, nearest)) * rng.choice([-1.0, 1.0])
    return round(part.center[axis] + offset)


def slice_through_plan(plan: PituitaryPlan, plane: str, rng: np.random.Generator) -> int:
    """A slice through one of the adenoma's parts (the bigger, the likelier)."""
    volumes = np.array([np.prod(p.semi_axes) for p in plan.parts])
    part = plan.parts[rng.choice(len(plan.parts), p=volumes / volumes.sum())]
    return slice_through(part, plane, rng)


def ellipsoid_section(template: Template, maps: SliceMaps, part: Ellipsoid) -> Section | None:
    """Canvas centre and (row, col) semi-axes of an ellipsoid's cut by this slice, or None."""
    axis = NORMAL_AXIS[maps.plane]
    offset = (maps.index - part.center[axis]) / part.semi_axes[axis]
    if abs(offset) >= 0.95:
        return None
    shrink = float(np.sqrt(1.0 - offset**2))
    canvas_center = voxel_to_canvas(template, maps.plane, part.center)
    lateral, front_back, up_down = part.semi_axes
    row_semi, col_semi = {
        "axial": (front_back, lateral),
        "coronal": (up_down, lateral),
        "sagittal": (up_down, front_back),
    }[maps.plane]
    return canvas_center, row_semi * shrink, col_semi * shrink


def _paint_ellipse(
    scene: Scene,
    section: Section,
    value: float,
    rng: np.random.Generator,
    *,
    lobulation: float,
    texture: float,
    edge: float,
) -> np.ndarray:
    """Paint an elliptical mass of signal `value` (with some texture); return its canvas mask."""
    center, row_semi, col_semi = section
    box = Box.around(center, 1.5 * max(row_semi, col_semi) + 3, scene.image.shape)
    level = blob_level(
        rng, box.shape, box.local(center), row_semi, lobulation=lobulation, roughness=0.04,
        elongation=col_semi / row_semi, angle=rng.uniform(-0.2, 0.2), noise_scale=3.0,
    )  # fmt: skip
    values = value * (1 + texture * smooth_noise(rng, box.shape, 2.0))
    blend(scene.image[box.slices], values.astype(np.float32), soft_inside(level, edge))
    mask = np.zeros(scene.image.shape, dtype=bool)
    mask[box.slices] = level < 1.0
    return mask


def paint_normal_gland(scene: Scene, template: Template, rng: np.random.Generator) -> None:
    """Every brain has a pituitary gland: draw it where the slice passes through the sella."""
    gland = Ellipsoid(tuple(float(v) for v in SELLA_VOXEL), NORMAL_GLAND_MM)
    section = ellipsoid_section(template, scene.maps, gland)
    if section is None:
        return
    contrast = scene.contrast
    if contrast.is_t1:  # the normal gland enhances avidly too
        value = contrast.enhancing * rng.uniform(0.7, 0.9)
    else:
        value = contrast.level(T1_GREY) * rng.uniform(0.9, 1.05)
    _paint_ellipse(scene, section, value, rng, lobulation=0.05, texture=0.03, edge=0.3)


def place_pituitary(template: Template, maps: SliceMaps, plan: PituitaryPlan) -> Placement | None:
    """The adenoma's cut in this slice; a macroadenoma lifts the chiasm and hypothalamus."""
    sections = [s for p in plan.parts if (s := ellipsoid_section(template, maps, p)) is not None]
    if not sections:
        return None
    center, row_semi, col_semi = max(sections, key=lambda s: s[1] * s[2])
    radius = max(max(s[1], s[2]) for s in sections)
    return Placement(
        center=center,
        radius=radius,
        displaced_radius=0.0 if plan.micro else 0.5 * min(row_semi, col_semi),
        reach=0.4 * radius + 4.0,
        details={"sections": sections, "micro": plan.micro},
    )


def paint_pituitary(
    scene: Scene, template: Template, place: Placement, rng: np.random.Generator
) -> np.ndarray:
    """Paint the adenoma (micro: a spot in the gland); return its mask."""
    contrast, grey = scene.contrast, scene.contrast.level(T1_GREY)
    sections = place.details["sections"]
    if place.details["micro"]:  # enhances later than the gland: dark in it on T1, bright on T2
        paint_normal_gland(scene, template, rng)
        value = grey * (rng.uniform(0.7, 0.9) if contrast.is_t1 else rng.uniform(1.2, 1.45))
        return _paint_ellipse(scene, sections[0], value, rng, lobulation=0.1, texture=0.05,
                              edge=0.3)  # fmt: skip
    if contrast.is_t1:
        value = contrast.enhancing * rng.uniform(0.8, 0.97)
    else:  # a little brighter than grey matter, often heterogeneous
        value = grey * rng.uniform(1.2, 1.5)
    lobulation, texture = rng.uniform(0.03, 0.15), rng.uniform(0.05, 0.15)
    mask = np.zeros(scene.image.shape, dtype=bool)
    for section in sections:
        mask |= _paint_ellipse(scene, section, value, rng, lobulation=lobulation,
                               texture=texture, edge=0.2)  # fmt: skip
    if rng.random() < 0.3:  # a cystic part: fluid signal inside the mass
        center, row_semi, col_semi = max(sections, key=lambda s: s[1] * s[2])
        shift = (rng.uniform(-0.3, 0.3) * row_semi, rng.uniform(-0.3, 0.3) * col_semi)
        cyst = ((center[0] + shift[0], center[1] + shift[1]), row_semi * 0.4, col_semi * 0.4)
        _paint_ellipse(scene, cyst, free_fluid(contrast, rng), rng, lobulation=0.1,
                       texture=0.03, edge=0.4)  # fmt: skip
    return mask
