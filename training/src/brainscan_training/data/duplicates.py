"""Exact and near-duplicate images: find the groups, decide which copy stays (docs/data.md).

Exact copies share their sha256. Near-duplicates (re-encoded, resized or re-coloured copies) have
perceptual hashes within `max_distance` bits of each other: imagehash's DCT hash at 16x16 (256
bits) of the decoded, 8-bit normalised image. Groups are the connected components of those
links. Rules, applied per group:

- label conflict inside Testing (copies under two classes): a problem, never resolved here;
- copies in Testing: the first Testing copy (by path) stays, every other copy goes (Training
  copies leak the test image; they go whatever class they carry, so Testing stays as published);
- copies only in Training under two classes: all go (the label is unknowable);
- otherwise the first copy (by path) stays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import imagehash
import numpy as np
from brainscan_manifest.decode import upright_eight_bit
from PIL import Image

HASH_SIZE = 16  # a 16x16 DCT hash: 256 bits (8x8 cannot tell copies from other slices)
HASH_BYTES = HASH_SIZE * HASH_SIZE // 8
DEFAULT_MAX_DISTANCE = 12  # bits of 256; docs/data.md says how it was measured
_ROWS_PER_BLOCK = 64  # hashes compared against all others at once: 64 x n x 32 bytes

Mode = Literal["drop", "fail"]


def perceptual_hash(image: Image.Image) -> bytes:
    """The 256-bit DCT hash of an opened image, after the decode normalisation training uses."""
    bits = imagehash.phash(upright_eight_bit(image), hash_size=HASH_SIZE).hash
    return np.packbits(bits.reshape(-1)).tobytes()


def hamming(a: bytes, b: bytes) -> int:
    return int.from_bytes(bytes(x ^ y for x, y in zip(a, b, strict=True)), "big").bit_count()


def near_pairs(hashes: Sequence[bytes], max_distance: int) -> list[tuple[int, int]]:
    """Every pair (i < j) of hashes at most `max_distance` bits apart, in one vectorised pass."""
    if len(hashes) < 2:
        return []
    words = np.frombuffer(b"".join(hashes), dtype=np.uint64).reshape(len(hashes), -1)
    pairs = []
    for start in range(0, len(words), _ROWS_PER_BLOCK):
        block = words[start : start + _ROWS_PER_BLOCK]
        distance = np.bitwise_count(block[:, None, :] ^ words[None, start:, :]).sum(axis=2)
        rows, cols = np.nonzero(distance <= max_distance)
        keep = cols > rows  # column offset `start`: above the diagonal means j > i
        pairs += zip((rows[keep] + start).tolist(), (cols[keep] + start).tolist(), strict=True)
    return pairs


class _Components:
    """Union-find over indices 0..n-1."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(j)] = self.find(i)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            members.setdefault(self.find(i), []).append(i)
        return [m for m in members.values() if len(m) > 1]


@dataclass(frozen=True)
class Copy:
    """One image of a group and what happens to it."""

    path: Path
    split: str
    class_name: str
    sha256: str
    distance: int  # bits from the group's reference copy (the kept one, else the first)
    kept: bool
    reason: str


@dataclass(frozen=True)
class DuplicateGroup:
    copies: tuple[Copy, ...]
    problem: bool = False  # a label conflict inside Testing: the data set must be fixed

    @property
    def kind(self) -> str:
        return "exact" if len({c.sha256 for c in self.copies}) == 1 else "near"

    @property
    def distance(self) -> int:
        return max(c.distance for c in self.copies)

    @property
    def kept(self) -> Copy | None:
        return next((c for c in self.copies if c.kept), None)

    @property
    def splits(self) -> list[str]:
        return sorted({c.split for c in self.copies}, reverse=True)  # Training, Testing

    @property
    def classes(self) -> list[str]:
        return sorted({c.class_name for c in self.copies})

    def describe(self, root: Path) -> str:
        """One line for a DataCheckError or the log."""
        if self.kind == "exact":
            kind = "exact duplicates"
        else:
            kind = f"near duplicates (distance {self.distance})"
        if len(self.splits) > 1:
            where = "across Training and Testing (test leakage)"
        else:
            where = f"within {self.splits[0]}"
        if len(self.classes) > 1:
            where += f" under classes {', '.join(self.classes)} (label conflict)"
        paths = ", ".join(c.path.relative_to(root).as_posix() for c in self.copies)
        return f"{kind} {where}: {paths}"

    def to_dict(self, root: Path) -> dict:
        kept = self.kept
        return {
            "kind": self.kind,
            "distance": self.distance,
            "splits": self.splits,
            "classes": self.classes,
            "kept": kept.path.relative_to(root).as_posix() if kept else None,
            "copies": [
                {
                    "path": c.path.relative_to(root).as_posix(),
                    "split": c.split,
                    "class": c.class_name,
                    "distance": c.distance,
                    "exact": c.sha256 == (kept or self.copies[0]).sha256,
                    "kept": c.kept,
                    "reason": c.reason,
                }
                for c in self.copies
            ],
        }


def find_groups(images: Sequence, max_distance: int) -> list[DuplicateGroup]:
    """Group `images` (each with path, split, class_name, sha256, phash) and apply the rules.

    Groups come sorted by their first path; copies inside a group by path.
    """
    components = _Components(len(images))
    first_with_bytes: dict[str, int] = {}
    for i, info in enumerate(images):
        components.union(first_with_bytes.setdefault(info.sha256, i), i)
    for i, j in near_pairs([info.phash for info in images], max_distance):
        components.union(i, j)
    groups = [
        _resolve(sorted((images[i] for i in members), key=lambda info: info.path.as_posix()))
        for members in components.groups()
    ]
    return sorted(groups, key=lambda group: group.copies[0].path.as_posix())


def _resolve(members: list) -> DuplicateGroup:
    testing = [m for m in members if m.split == "Testing"]
    classes = sorted({m.class_name for m in members})
    test_classes = sorted({m.class_name for m in testing})
    problem = len(test_classes) > 1
    why = ""  # why every copy goes, when none is kept
    if problem:
        keep, why = None, f"label conflict inside Testing ({', '.join(test_classes)})"
    elif testing:
        keep = testing[0]
    elif len(classes) > 1:
        keep, why = None, f"label conflict in Training ({', '.join(classes)})"
    else:
        keep = members[0]

    def reason(member) -> str:
        if member is keep:
            return "first copy in Testing" if member.split == "Testing" else "first copy"
        if keep is None:
            return why
        if member.split == "Testing":
            return "duplicate within Testing"
        if member.class_name != keep.class_name:
            return f"copy of a Testing image under another class ({keep.class_name})"
        return "copy of a Testing image (test leakage)" if testing else "duplicate within Training"

    reference = keep or members[0]
    copies = tuple(
        Copy(
            path=m.path,
            split=m.split,
            class_name=m.class_name,
            sha256=m.sha256,
            distance=hamming(m.phash, reference.phash),
            kept=m is keep,
            reason=reason(m),
        )
        for m in members
    )
    return DuplicateGroup(copies, problem=problem)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
