"""Tissue contrast: T1-like or T2-like intensities for brain tissue and the head around it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Template T1 value of each tissue (the template is T1-weighted): CSF dark, grey mid, white bright.
T1_CSF, T1_GREY, T1_WHITE = 0.30, 0.62, 0.80


@dataclass(frozen=True)
class Contrast:
    """One image's contrast: how template T1 values and head layers map to signal."""

    name: str  # "t1" or "t2"
    tissue_knots: tuple[float, ...]  # template T1 values ...
    tissue_values: tuple[float, ...]  # ... and the signal they get
    shell_knots: tuple[float, ...]  # mm outside the brain surface ...
    shell_values: tuple[float, ...]  # ... and the signal of CSF, bone, marrow, scalp there

    def tissue(self, t1: np.ndarray) -> np.ndarray:
        """Signal of brain tissue given its template T1 value."""
        return np.interp(t1, self.tissue_knots, self.tissue_values).astype(np.float32)

    def shell(self, outside_mm: np.ndarray) -> np.ndarray:
        """Signal of the layers outside the brain (CSF, skull, marrow, scalp) by distance."""
        return np.interp(outside_mm, self.shell_knots, self.shell_values).astype(np.float32)

    def level(self, t1_value: float) -> float:
        """Signal of a tissue with the given template T1 value (e.g. T1_GREY)."""
        return float(np.interp(t1_value, self.tissue_knots, self.tissue_values))

    @property
    def csf(self) -> float:
        return self.level(T1_CSF)


def sample_contrast(rng: np.random.Generator, t2_probability: float = 0.4) -> Contrast:
    """Draw a T1-like (most Kaggle images are post-contrast T1) or T2-like contrast."""
    is_t2 = rng.random() < t2_probability
    j = rng.uniform(-0.05, 0.05, size=6)
    if is_t2:
        # CSF bright, grey above white; the template's soft edge (partial volume) turns bright.
        knots = (0.0, 0.12, T1_CSF, 0.5, T1_GREY, T1_WHITE, 1.0)
        values = (0.0, 0.55, 0.95 + j[0], 0.75, 0.58 + j[1], 0.42 + j[2], 0.36 + j[2])
    else:
        knots = (0.0, T1_CSF, T1_GREY, T1_WHITE, 1.0)
        values = (0.0, 0.22 + j[0], 0.58 + j[1], 0.80 + j[2], 0.95 + j[2])
    return Contrast(
        name="t2" if is_t2 else "t1",
        tissue_knots=knots,
        tissue_values=values,
        **_head_layers(rng, is_t2, values[knots.index(T1_CSF)]),
    )


def _head_layers(rng: np.random.Generator, is_t2: bool, csf: float) -> dict:
    """Concentric layers around the brain: CSF gap, inner table, marrow, outer table, scalp."""
    widths = {
        "csf": rng.uniform(1.0, 3.0),
        "inner_table": rng.uniform(1.0, 2.0),
        "marrow": rng.uniform(1.5, 4.5),
        "outer_table": rng.uniform(1.0, 2.0),
        "fat": rng.uniform(2.0, 5.0),
        "skin": rng.uniform(1.0, 2.5),
    }
    bone = rng.uniform(0.02, 0.08)
    if is_t2:
        marrow, fat, skin = rng.uniform(0.35, 0.6), rng.uniform(0.5, 0.75), rng.uniform(0.3, 0.5)
    else:
        marrow, fat, skin = rng.uniform(0.45, 0.75), rng.uniform(0.7, 0.95), rng.uniform(0.35, 0.55)
    edges = np.cumsum([0.0, *widths.values()])
    # Half-millimetre ramps between layers keep the edges soft like a real acquisition's.
    knots, values = [0.0], [csf]
    layer_values = [csf, bone, marrow, bone, fat, skin]
    for start, end, value in zip(edges[:-1], edges[1:], layer_values, strict=True):
        knots += [start + 0.5, end - 0.25]
        values += [value, value]
    knots += [edges[-1] + 0.5]
    values += [0.0]
    return {"shell_knots": tuple(knots), "shell_values": tuple(values)}
