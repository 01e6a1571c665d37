"""The OOD corpus: every category filled, images as an upload decodes them, deterministic per seed,
written as PNGs with a matching CSV, and the CLI."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from brainscan_training.ood.corpus import CATEGORIES, build_corpus, main, write_corpus
from PIL import Image


def fingerprint(items) -> list[tuple]:
    return [
        (i.name, i.category, i.source, i.image.mode, i.image.size, i.image.tobytes()) for i in items
    ]


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(seed=0)


def test_every_category_holds_at_least_five_items_with_unique_names(corpus):
    counts = Counter(item.category for item in corpus)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 5
    assert 90 <= len(corpus) <= 130
    names = [item.name for item in corpus]
    assert len(set(names)) == len(names)
    for item in corpus:
        category, what = item.name.split("/")
        assert category == item.category and what.isidentifier(), item.name


def test_images_are_8_bit_grey_or_rgb_and_at_least_64_px(corpus):
    for item in corpus:
        assert item.image.mode in ("L", "RGB"), item.name
        assert min(item.image.size) >= 64, item.name
        assert np.asarray(item.image).dtype == np.uint8, item.name


def test_sources_say_in_one_line_where_each_image_comes_from(corpus):
    for item in corpus:
        assert item.source.strip() and "\n" not in item.source, item.name


def test_no_image_is_blank_by_accident(corpus):
    # Only the blank category may be flat; anything else flat means a builder drew nothing.
    for item in corpus:
        if item.category != "blank":
            assert np.asarray(item.image).std() > 3, item.name


def test_same_seed_gives_the_same_bytes_and_another_seed_changes_the_random_items(corpus):
    assert fingerprint(build_corpus(seed=0)) == fingerprint(corpus)
    other = {item.name: item.image.tobytes() for item in build_corpus(seed=1)}
    assert other.keys() == {item.name for item in corpus}
    same = {item.name for item in corpus if item.image.tobytes() == other[item.name]}
    assert "real_scanner/s1045_sagittal_t1" in same  # read from a file: no randomness
    assert not same & {"noise/gaussian", "geometry/rotated_90", "unseen_config/proton_density"}


def test_write_corpus_writes_the_pngs_and_a_csv_that_lists_them(corpus, tmp_path: Path):
    csv_path = write_corpus(tmp_path / "ood", seed=0)
    assert csv_path == tmp_path / "ood" / "corpus.csv"
    with csv_path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["name"] for r in rows] == [item.name for item in corpus]
    for row, item in zip(rows, corpus, strict=True):
        assert row["category"] == item.category and row["source"] == item.source
        assert row["path"] == f"{item.category}/{row['name'].split('/')[1]}.png"
        with Image.open(csv_path.parent / row["path"]) as image:
            assert image.format == "PNG" and image.mode == item.image.mode
            assert image.tobytes() == item.image.tobytes()  # lossless
    assert len(list((tmp_path / "ood").rglob("*.png"))) == len(corpus)


def test_cli_writes_the_corpus_and_a_contact_sheet(tmp_path: Path):
    sheet = tmp_path / "sheet.png"
    assert main(["--out", str(tmp_path / "ood"), "--seed", "3", "--sheet", str(sheet)]) == 0
    assert (tmp_path / "ood" / "corpus.csv").is_file()
    with Image.open(sheet) as image:
        assert image.mode == "RGB" and image.width >= 10 * 96
