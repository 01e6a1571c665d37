"""Tissue contrast: post-contrast T1, T2 or FLAIR intensities for the brain and the head around it.

The Kaggle set is mostly post-contrast T1 (the figshare part is entirely so), with some T2 and
FLAIR. Each contrast also says how lesions look on it: what oedema and non-enhancing tumour tend
towards, what free fluid (necrosis, cysts, CSF clefts) looks like, and whether tissue enhances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Template T1 value of each tissue (the template is T1-weighted): CSF dark, grey mid, white bright.
T1_CSF, T1_GREY, T1_WHITE = 0.30, 0.62, 0.80
# Share of each contrast among the images: the Kaggle set's figshare part (3,064 of its 7,023
# images) is all post-contrast T1 and much of the rest is T1-weighted too.
CONTRAST_WEIGHTS = {"t1c": 0.8, "t2": 0.12, "flair": 0.08}


@dataclass(frozen=True)
class Contrast:
    """One image's contrast: how template T1 values and head layers map to signal."""

    name: str  # "t1c" (post-contrast T1), "t2" or "flair"
    tissue_knots: tuple[float, ...]  # template T1 values ...
    tissue_values: tuple[float, ...]  # ... and the signal they get
    shell_knots: tuple[float, ...]  # mm outside the brain surface ...
    shell_values: tuple[float, ...]  # ... and the signal of CSF, bone, marrow, scalp there
    edema: float  # what oedema and non-enhancing tumour tend towards (ignored on T1)
    enhancing: float  # signal of tissue that takes up gadolinium (post-contrast T1 only)

    def tissue(self, t1: np.ndarray) -> np.ndarray:
        """Signal of brain tissue given its template T1 value (in [0, 1])."""
        return _lookup(t1, self.tissue_knots, self.tissue_values, 1.0 / 1024)

    def shell(self, outside_mm: np.ndarray) -> np.ndarray:
        """Signal of the layers outside the brain (CSF, skull, marrow, scalp) by distance."""
        return _lookup(outside_mm, self.shell_knots, self.shell_values, 1.0 / 128)

    def level(self, t1_value: float) -> float:
        """Signal of a tissue with the given template T1 value (e.g. T1_GREY)."""
        return float(np.interp(t1_value, self.tissue_knots, self.tissue_values))

    @property
    def csf(self) -> float:
        """Free fluid: CSF, necrosis, cysts."""
        return self.level(T1_CSF)

    @property
    def is_t1(self) -> bool:
        """On T1, oedema and non-enhancing tumour are darker than brain; elsewhere brighter."""
        return self.name == "t1c"


def _lookup(
    x: np.ndarray, knots: tuple[float, ...], values: tuple[float, ...], step: float
) -> np.ndarray:
    """np.interp(x, knots, values) for x >= 0 through a table of `step` spacing: a quarter of the
    cost on a whole canvas, and the curves are smooth on that scale."""
    table = np.interp(np.arange(0.0, knots[-1] + 2 * step, step), knots, values).astype(np.float32)
    index = np.minimum(x * (1.0 / step) + 0.5, table.size - 1).astype(np.intp)
    return table[index]


def sample_contrast(rng: np.random.Generator) -> Contrast:
    """Draw post-contrast T1 (most Kaggle images), T2 or FLAIR, with jittered tissue levels."""
    names = list(CONTRAST_WEIGHTS)
    name = names[rng.choice(len(names), p=np.asarray(list(CONTRAST_WEIGHTS.values())))]
    j = rng.uniform(-0.04, 0.04, size=4)
    if name == "t2":
        # CSF bright, grey above white; the template's soft edge (partial volume) turns bright.
        knots = (0.0, 0.12, T1_CSF, 0.5, T1_GREY, T1_WHITE, 1.0)
        values = (0.0, 0.55, 0.95 + j[0], 0.75, 0.58 + j[1], 0.42 + j[2], 0.36 + j[2])
        edema, enhancing = values[2] * rng.uniform(0.9, 1.0), 0.0
    elif name == "flair":
        # T2 with the free water nulled: CSF dark, grey a little above white; oedema bright.
        knots = (0.0, 0.12, T1_CSF, 0.5, T1_GREY, T1_WHITE, 1.0)
        values = (0.0, 0.2, 0.12 + j[0] / 2, 0.45, 0.6 + j[1], 0.48 + j[2], 0.45 + j[2])
        edema, enhancing = rng.uniform(0.9, 1.0), 0.0
    else:
        # Spin-echo T1 after gadolinium: less grey-white contrast than the template's gradient
        # echo; enhancing tissue is the brightest thing in the brain.
        knots = (0.0, T1_CSF, T1_GREY, T1_WHITE, 1.0)
        values = (0.0, 0.2 + j[0], 0.52 + j[1], 0.68 + j[2], 0.74 + j[2])
        edema, enhancing = 0.0, values[3] * rng.uniform(1.35, 1.5)
    return Contrast(
        name=name,
        tissue_knots=knots,
        tissue_values=values,
        edema=float(edema),
        enhancing=float(enhancing),
        **_head_layers(rng, name, float(np.interp(T1_CSF, knots, values))),
    )


def _head_layers(rng: np.random.Generator, name: str, csf: float) -> dict:
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
    if name == "t2":
        marrow, fat, skin = rng.uniform(0.35, 0.6), rng.uniform(0.5, 0.75), rng.uniform(0.3, 0.5)
    elif name == "flair":
        marrow, fat, skin = rng.uniform(0.35, 0.6), rng.uniform(0.55, 0.8), rng.uniform(0.3, 0.5)
    else:
        marrow, fat, skin = rng.uniform(0.45, 0.75), rng.uniform(0.7, 0.95), rng.uniform(0.35, 0.55)
    return shell_curve(list(widths.values()), [csf, bone, marrow, bone, fat, skin])


def shell_curve(widths: list[float], signals: list[float]) -> dict:
    """Contrast.shell_knots and shell_values for concentric layers of `widths` mm and `signals`
    (CSF gap, inner table, marrow, outer table, fat, skin), air beyond the last."""
    edges = np.cumsum([0.0, *widths])
    # Half-millimetre ramps between layers keep the edges soft like a real acquisition's.
    knots, values = [0.0], [signals[0]]
    for start, end, value in zip(edges[:-1], edges[1:], signals, strict=True):
        knots += [start + 0.5, end - 0.25]
        values += [value, value]
    knots += [edges[-1] + 0.5]
    values += [0.0]
    return {"shell_knots": tuple(knots), "shell_values": tuple(values)}
