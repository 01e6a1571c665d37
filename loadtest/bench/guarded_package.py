"""Give a plain package the project's out-of-distribution guard, fitted without training data.

The bench measures what the guard costs, and that is only its arithmetic: the same cues
(``mobilenet_cues``), whitening and appearance network as the pipeline's guard stage builds,
fitted here on a few hundred synthetic slices with one short epoch of the appearance network.
Its verdicts mean nothing; its graph computes exactly as much as the served guard's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIT_IMAGES = 320
"""Half fit the cues (more than the 64 principal components the widest cue keeps, so every
whitening matrix has its served shape), half calibrate."""
ORIGIN = (
    f"fitted by the bench on {FIT_IMAGES} synthetic slices, appearance network 1 epoch: "
    "the served guard's arithmetic, meaningless verdicts"
)


def synthetic_inputs(spec, count: int, seed: int = 11) -> np.ndarray:
    """``count`` model inputs of synthetic MRI slices, every class in turn."""
    from brainscan_manifest.preprocess import to_input_array
    from brainscan_synthetic_mri.synthetic import CLASSES, render_example
    from PIL import Image

    rng = np.random.default_rng(seed)
    slices = (
        render_example(CLASSES[i % len(CLASSES)], rng, spec.height, with_masks=False).image
        for i in range(count)
    )
    return np.stack([to_input_array(Image.fromarray(pixels), spec) for pixels in slices])


def add_guard(plain_dir: Path, out_dir: Path, images: int = FIT_IMAGES) -> Path:
    """``out_dir`` = the package in ``plain_dir`` with a guard (written and verified)."""
    from brainscan_manifest.verify import load_package
    from brainscan_training.ood.build import (
        GuardSettings,
        fit_package_guard,
        write_guarded_package,
    )
    from brainscan_training.ood.cues import mobilenet_cues

    _, manifest = load_package(plain_dir)
    inputs = synthetic_inputs(manifest.input, images)
    half = len(inputs) // 2
    settings = GuardSettings(
        appearance=True, appearance_epochs=1, appearance_repeats=1, fit_images=half
    )
    manifest, fit = fit_package_guard(
        plain_dir,
        mobilenet_cues,
        inputs[:half],
        inputs[half:],
        settings,
        split="synthetic slices (bench: for its cost only)",
    )
    write_guarded_package(out_dir, fit.model, manifest, fit.spec)
    return out_dir
