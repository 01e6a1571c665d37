"""Make a small real model package with the training code, for the end-to-end image test.

An untrained MobileNetV2 (alpha 0.35, 96 px) exported by `brainscan_training.export` exactly as
the pipeline exports a trained one: uint8 NHWC input, probabilities + feature map, manifest with
the classifier weights. The test checks the plumbing from registry to gateway, not accuracy.
Usage: make_model_package.py OUT_DIR [--name NAME]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# TensorFlow's start-up chatter is noise in a test log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--name", default="brainscan-mobilenetv2")
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args(argv)

    import keras
    from brainscan_training.export import export_package
    from brainscan_training.model import build_model
    from brainscan_training.params import load_params

    keras.utils.set_random_seed(7)
    classes = load_params().classes
    model = build_model(num_classes=len(classes), image_size=args.size, alpha=0.35)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    export_package(model, args.out_dir, classes, name=args.name, default_threshold=0.6)


if __name__ == "__main__":
    main()
