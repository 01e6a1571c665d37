"""Where each pipeline stage reads and writes, relative to the repository root (as dvc.yaml)."""

from pathlib import Path

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")
TRAIN_DIR = Path("artifacts/train")
KERAS_MODEL = TRAIN_DIR / "model.keras"
RUN_FILE = TRAIN_DIR / "run.json"
HISTORY_FILE = TRAIN_DIR / "history.json"
EXPORT_DIR = Path("artifacts/export")
PACKAGE_DIR = Path("artifacts/package")
"""The exported package with its out-of-distribution guard: what is registered and served."""
REPORTS_DIR = Path("reports")
METRICS_FILE = REPORTS_DIR / "metrics.json"
PARITY_FILE = REPORTS_DIR / "parity.json"
REGISTRATION_FILE = REPORTS_DIR / "registration.json"
OOD_FILE = REPORTS_DIR / "ood.json"


def split_csv(name: str) -> Path:
    return PREPARED_DIR / f"{name}.csv"
