"""Contrasts: post-contrast T1 for most images, T2 and FLAIR for the rest, each with its physics."""

from __future__ import annotations

from collections import Counter

import numpy as np
from brainscan_synthetic_mri.contrast import (
    CONTRAST_WEIGHTS,
    T1_CSF,
    T1_GREY,
    T1_WHITE,
    sample_contrast,
)


def test_post_contrast_t1_is_the_most_common():
    counts = Counter(sample_contrast(np.random.default_rng(s)).name for s in range(2000))
    assert set(counts) == set(CONTRAST_WEIGHTS)
    for name, weight in CONTRAST_WEIGHTS.items():
        assert abs(counts[name] / 2000 - weight) < 0.04, counts
    assert counts.most_common(1)[0][0] == "t1c"


def test_each_contrast_orders_the_tissues_as_mri_does():
    for seed in range(100):
        c = sample_contrast(np.random.default_rng(seed))
        csf, grey, white = c.level(T1_CSF), c.level(T1_GREY), c.level(T1_WHITE)
        if c.name == "t1c":
            assert csf < grey < white < c.enhancing  # enhancing tissue outshines all brain
            assert c.is_t1
        elif c.name == "t2":
            assert white < grey < csf <= c.edema * 1.12  # fluid and oedema bright
        else:  # FLAIR: free water nulled, oedema still bright
            assert csf < white < grey < c.edema
        assert c.csf == csf
