"""Synthetic brain MRI data set in the Kaggle "Brain Tumor MRI Dataset" layout.

Slices of the MNI152 T1 template (shipped inside nilearn, so no download) with tumours drawn where
each class occurs, in varied position, contrast and scanner conditions; deterministic per seed.
CLI: python -m brainscan_synthetic_mri.synthetic --out data/raw --train-per-class 2000 ...
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from brainscan_synthetic_mri.acquisition import (
    output_shape,
    resample,
    scanner_effects,
    view_matrix,
)
from brainscan_synthetic_mri.anatomy import CANVAS, SliceMaps, Template, cut_slice, load_template
from brainscan_synthetic_mri.contrast import Contrast, sample_contrast
from brainscan_synthetic_mri.lesions import (
    Placement,
    Scene,
    paint_glioma,
    paint_meningioma,
    place_glioma,
    place_meningioma,
)
from brainscan_synthetic_mri.mass_effect import push_away
from brainscan_synthetic_mri.sella import (
    paint_normal_gland,
    paint_pituitary,
    place_pituitary,
    plan_pituitary,
    slice_through_plan,
)
from brainscan_synthetic_mri.shapes import coarse_noise

log = logging.getLogger(__name__)

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
SPLITS = ("Training", "Testing")
# Kaggle's file names: Tr-gl_0001.jpg, Te-pi_0042.jpg, ...
SPLIT_PREFIX = {"Training": "Tr", "Testing": "Te"}
CLASS_ABBREVIATION = {"glioma": "gl", "meningioma": "me", "notumor": "no", "pituitary": "pi"}
# Most Kaggle slices are axial; pituitary tumours are often shown on sagittal and coronal cuts.
PLANE_WEIGHTS = {"axial": 0.7, "coronal": 0.15, "sagittal": 0.15}
PITUITARY_PLANE_WEIGHTS = {"axial": 0.5, "coronal": 0.2, "sagittal": 0.3}
MAX_PLACEMENT_ATTEMPTS = 50


@dataclass(frozen=True)
class RenderedImage:
    """One synthetic slice and what is known about it."""

    class_name: str
    image: np.ndarray  # uint8 (H, W) greyscale
    lesion_mask: np.ndarray  # bool (H, W): the tumour (glioma: its core, without oedema)
    brain_mask: np.ndarray  # bool (H, W): brain tissue, after any mass effect
    plane: str  # axial, coronal or sagittal
    slice_mm: float  # MNI coordinate of the slice along its normal
    contrast: str  # t1c (post-contrast T1), t2 or flair


def _choose_plane(rng: np.random.Generator, weights: dict[str, float]) -> str:
    planes = list(weights)
    return planes[rng.choice(len(planes), p=np.asarray(list(weights.values())))]


def _slice_and_placement(
    class_name: str, template: Template, rng: np.random.Generator
) -> tuple[SliceMaps, Placement | None]:
    """Pick a slice that contains the class's lesion, and the lesion's place in it."""
    for _ in range(MAX_PLACEMENT_ATTEMPTS):
        if class_name == "pituitary":
            plan = plan_pituitary(rng)
            plane = _choose_plane(rng, PITUITARY_PLANE_WEIGHTS)
            index = slice_through_plan(plan, plane, rng)
            maps = cut_slice(template, plane, index)
            placement = place_pituitary(template, maps, plan)
        else:
            plane = _choose_plane(rng, PLANE_WEIGHTS)
            low, high = template.slice_ranges[plane]
            maps = cut_slice(template, plane, int(rng.integers(low, high + 1)))
            if class_name == "notumor":
                return maps, None
            place = place_glioma if class_name == "glioma" else place_meningioma
            placement = place(maps, rng)
        if placement is not None:
            return maps, placement
    raise RuntimeError(f"could not place a {class_name} in {MAX_PLACEMENT_ATTEMPTS} slices")


def render_example(
    class_name: str,
    rng: np.random.Generator,
    image_size: int = 256,
    *,
    augment: bool = True,
    with_masks: bool = True,
    contrast: Contrast | None = None,
    slice_maps: SliceMaps | None = None,
    head_fill: float | None = None,
) -> RenderedImage:
    """Render one slice of `class_name` (one of CLASSES) with its lesion and brain masks.

    augment=False keeps the canvas geometry (no rotation, shift, mirror or size jitter) and the
    scanner's ideal intensities, which makes lesion positions easy to check. with_masks=False
    leaves the masks empty (the data set writer does not need them; saves a fifth of the time).
    contrast (tissue and head layers), slice_maps (a slice to render, notumor only) and head_fill
    (share of the frame the head spans) replace what would be drawn, for images training never
    sees (ood/corpus.py); left at None, the rendering is exactly the training data's.
    """
    if class_name not in CLASSES:
        raise ValueError(f"unknown class {class_name!r}; expected one of {', '.join(CLASSES)}")
    if slice_maps is not None and class_name != "notumor":
        raise ValueError("slice_maps is only supported for notumor: lesions need a placement")
    template = load_template()
    contrast = sample_contrast(rng) if contrast is None else contrast
    if slice_maps is None:
        maps, placement = _slice_and_placement(class_name, template, rng)
    else:
        maps, placement = slice_maps, None

    tissue, brain, t1 = contrast.tissue(maps.t1), maps.brain.astype(np.float32), maps.t1
    if placement is not None:
        tissue, brain, t1 = push_away(
            [tissue, brain, t1], placement.center, placement.displaced_radius, placement.reach
        )
        brain = np.where(maps.signed_mm < 1.0, brain, 0.0)  # the skull does not move
    # Heads differ: the layers around the brain thicken and thin from place to place.
    thickness = rng.uniform(0.85, 1.15) + 0.12 * coarse_noise(rng, maps.signed_mm.shape, 6)
    head_mm = np.maximum(maps.signed_mm, 0.0) * thickness
    shell = contrast.shell(head_mm)
    scene = Scene(maps, contrast, tissue * brain + shell * (1.0 - brain), brain, t1)

    lesion = np.zeros_like(maps.brain)
    if class_name != "pituitary":
        paint_normal_gland(scene, template, rng)
    if class_name == "glioma":
        lesion = paint_glioma(scene, placement, rng)
    elif class_name == "meningioma":
        lesion = paint_meningioma(scene, placement, rng)
    elif class_name == "pituitary":
        lesion = paint_pituitary(scene, template, placement, rng)

    shape = output_shape(rng, image_size, augment)
    matrix, offset = view_matrix(
        rng, *_head_extent(scene.image), CANVAS, shape, augment, fill=head_fill
    )
    image = resample(scene.image, matrix, offset, shape, order=1)
    if with_masks:
        lesion_mask = resample(lesion.astype(np.uint8), matrix, offset, shape, order=0) > 0
        brain_mask = resample(brain, matrix, offset, shape, order=1) > 0.5
    else:
        lesion_mask = brain_mask = np.zeros(shape, dtype=bool)
    return RenderedImage(
        class_name=class_name,
        image=scanner_effects(image, rng, augment),
        lesion_mask=lesion_mask,
        brain_mask=brain_mask,
        plane=maps.plane,
        slice_mm=maps.mni_mm,
        contrast=contrast.name,
    )


def _head_extent(image: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre and largest span (pixels) of the head on the canvas, from row and column profiles."""
    head = image > 0.03
    rows, cols = head.sum(axis=1), head.sum(axis=0)
    total = rows.sum()
    if total == 0:
        return ((CANVAS - 1) / 2, (CANVAS - 1) / 2), float(CANVAS)
    center = float(rows @ np.arange(rows.size) / total), float(cols @ np.arange(cols.size) / total)
    spans = [np.flatnonzero(p) for p in (rows, cols)]
    return center, float(max(s[-1] - s[0] + 1 for s in spans))


def image_rng(seed: int, split: str, class_name: str, index: int) -> np.random.Generator:
    """The generator of one image, distinct per (seed, split, class, index): splits never share."""
    key = [seed, SPLITS.index(split), CLASSES.index(class_name), index]
    return np.random.default_rng(np.random.SeedSequence(key))


def image_name(split: str, class_name: str, index: int) -> str:
    return f"{SPLIT_PREFIX[split]}-{CLASS_ABBREVIATION[class_name]}_{index:04d}.jpg"


def _write_image(task: tuple[Path, int, str, str, int, int]) -> str:
    """Render and save one image (runs in a worker process)."""
    out_dir, seed, split, class_name, index, image_size = task
    rng = image_rng(seed, split, class_name, index)
    rendered = render_example(class_name, rng, image_size, with_masks=False)
    # Kaggle's files are mostly RGB JPEGs of a grey image, some single-channel.
    mode = "RGB" if rng.random() < 0.8 else "L"
    path = out_dir / split / class_name / image_name(split, class_name, index)
    Image.fromarray(rendered.image, mode="L").convert(mode).save(
        path, format="JPEG", quality=int(rng.integers(82, 96))
    )
    return split


def _tasks(
    out_dir: Path, counts: dict[str, int], seed: int, image_size: int
) -> Iterator[tuple[Path, int, str, str, int, int]]:
    for split, per_class in counts.items():
        for class_name in CLASSES:
            for index in range(per_class):
                yield out_dir, seed, split, class_name, index, image_size


def _prepare_folders(out_dir: Path) -> None:
    """Create the class folders and remove images of an earlier run (their count may differ)."""
    for split in SPLITS:
        for class_name in CLASSES:
            folder = out_dir / split / class_name
            folder.mkdir(parents=True, exist_ok=True)
            pattern = f"{SPLIT_PREFIX[split]}-{CLASS_ABBREVIATION[class_name]}_*.jpg"
            for stale in folder.glob(pattern):
                stale.unlink()


def generate_dataset(
    out_dir: Path,
    train_per_class: int,
    test_per_class: int,
    seed: int,
    image_size: int = 256,
    workers: int = 2,
) -> dict:
    """Write out_dir/{Training,Testing}/<class>/*.jpg; return {split: {class: count}}."""
    if train_per_class < 1 or test_per_class < 1:
        raise ValueError("train_per_class and test_per_class must be at least 1")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")
    out_dir = Path(out_dir)
    _prepare_folders(out_dir)
    counts = {"Training": train_per_class, "Testing": test_per_class}
    total = len(CLASSES) * (train_per_class + test_per_class)
    tasks = _tasks(out_dir, counts, seed, image_size)
    started = time.perf_counter()
    log.info("generating %d images (%d px, seed %d) in %s", total, image_size, seed, out_dir)
    if workers <= 1:
        _report_progress(map(_write_image, tasks), total, started)
    else:
        # spawn: never fork a parent that may hold threads (TensorFlow, MLflow) into workers.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=load_template) as pool:
            _report_progress(pool.imap_unordered(_write_image, tasks, chunksize=16), total, started)
    elapsed = time.perf_counter() - started
    log.info("generated %d images in %.1f s (%.0f images/s)", total, elapsed, total / elapsed)
    return {split: dict.fromkeys(CLASSES, n) for split, n in counts.items()}


def _report_progress(done: Iterator[str], total: int, started: float) -> None:
    step = max(total // 10, 1)
    for count, _ in enumerate(done, start=1):
        if count % step == 0 or count == total:
            rate = count / max(time.perf_counter() - started, 1e-9)
            log.info("%d/%d images (%.0f images/s)", count, total, rate)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: generate the synthetic data set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="root folder to write")
    parser.add_argument("--train-per-class", type=int, default=2000)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    generate_dataset(
        out_dir=args.out,
        train_per_class=args.train_per_class,
        test_per_class=args.test_per_class,
        seed=args.seed,
        image_size=args.image_size,
        workers=args.workers,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
