"""Where the split and class folders of a data set are, in the layouts the real archives use.

Accepted (docs/data.md):

- the split folders at the root, or inside ONE wrapping folder (``archive/Training``), as an
  unpacked download often is;
- ``Training`` / ``Testing`` in any letter case (``training``, ``TESTING``);
- class folders named as the classes (any letter case) or by an alias of ``CLASS_ALIASES`` (the
  SARTAJ names, ``glioma_tumor`` ...).

Anything else is a problem that names the folder and says what is accepted. Hidden entries
(names starting with a dot) and macOS' ``__MACOSX`` archive folder are ignored everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("Training", "Testing")
# Folder name (lower case) -> class. The SARTAJ set names its folders this way.
CLASS_ALIASES = {
    "glioma_tumor": "glioma",
    "meningioma_tumor": "meningioma",
    "no_tumor": "notumor",
    "pituitary_tumor": "pituitary",
}
IGNORED_NAMES = ("__MACOSX",)


@dataclass
class Layout:
    """The resolved folders: `base` holds the splits (the root or its one wrapping folder)."""

    root: Path
    base: Path
    splits: dict[str, Path] = field(default_factory=dict)  # split -> folder
    classes: dict[str, dict[str, Path]] = field(default_factory=dict)  # split -> class -> folder

    def to_dict(self) -> dict:
        """Folders relative to the root (POSIX), for the data report."""

        def relative(path: Path) -> str:
            return path.relative_to(self.root).as_posix() or "."

        return {
            "base": relative(self.base),
            "splits": {split: relative(folder) for split, folder in self.splits.items()},
            "classes": {
                split: {name: folder.name for name, folder in per_class.items()}
                for split, per_class in self.classes.items()
            },
        }


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name in IGNORED_NAMES


def visible_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_hidden(p))


def _split_of(path: Path) -> str | None:
    lower = path.name.lower()
    return next((split for split in SPLITS if split.lower() == lower), None)


def _holds_a_split(folder: Path) -> bool:
    return any(p.is_dir() and _split_of(p) for p in visible_entries(folder))


def find_base(root: Path) -> Path:
    """`root` when it holds a split folder, else its only visible folder when that one does."""
    if _holds_a_split(root):
        return root
    folders = [p for p in visible_entries(root) if p.is_dir()]
    if len(folders) == 1 and _holds_a_split(folders[0]):
        return folders[0]
    return root


def class_names(classes: list[str]) -> dict[str, str]:
    """Accepted folder name (lower case) -> class: the classes themselves and their aliases."""
    accepted = {name.lower(): name for name in classes}
    for alias, name in CLASS_ALIASES.items():
        if name in classes:
            accepted.setdefault(alias, name)
    return accepted


def accepted_classes(classes: list[str]) -> str:
    aliases = [f"{alias} -> {name}" for alias, name in CLASS_ALIASES.items() if name in classes]
    tail = f"; aliases {', '.join(aliases)}" if aliases else ""
    return f"{', '.join(classes)}{tail}; any letter case"


def _claim(found: dict[str, list[Path]], what: str, problems: list[str]) -> dict[str, Path]:
    """One folder per split or class; two (``Training`` and ``training``) is a problem."""
    chosen = {}
    for name, folders in found.items():
        if len(folders) > 1:
            listed = ", ".join(str(f) for f in folders)
            problems.append(f"two folders for {what} {name}: {listed} (merge them into one)")
        chosen[name] = folders[0]
    return chosen


def resolve_layout(root: Path, classes: list[str], problems: list[str]) -> Layout:
    """Find the split and class folders under `root`; append every problem to `problems`."""
    layout = Layout(root=root, base=find_base(root))
    found: dict[str, list[Path]] = {}
    for entry in visible_entries(layout.base):
        split = _split_of(entry) if entry.is_dir() else None
        if split:
            found.setdefault(split, []).append(entry)
        elif entry.is_dir():
            problems.append(
                f"unknown split folder: {entry} (accepted: {', '.join(SPLITS)}, any letter case)"
            )
        # Files next to the splits (a README, the archive itself) are not the data set's.
    splits = _claim(found, "split", problems)
    accepted = class_names(classes)
    for split in SPLITS:
        if split not in splits:
            problems.append(f"missing split folder: {layout.base / split}")
            continue
        layout.splits[split] = splits[split]
        layout.classes[split] = _class_folders(splits[split], classes, accepted, problems)
    return layout


def _class_folders(
    split_dir: Path, classes: list[str], accepted: dict[str, str], problems: list[str]
) -> dict[str, Path]:
    found: dict[str, list[Path]] = {}
    for entry in visible_entries(split_dir):
        if not entry.is_dir():
            problems.append(f"unexpected file (expected only class folders): {entry}")
        elif entry.name.lower() in accepted:
            found.setdefault(accepted[entry.name.lower()], []).append(entry)
        else:
            problems.append(
                f"unknown class folder: {entry} (accepted: {accepted_classes(classes)})"
            )
    chosen = _claim(found, f"class in {split_dir.name}", problems)
    for name in classes:
        if name not in chosen:
            problems.append(f"missing class folder: {split_dir / name}")
    return {name: chosen[name] for name in classes if name in chosen}
