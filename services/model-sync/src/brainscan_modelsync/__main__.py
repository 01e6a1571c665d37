"""``python -m brainscan_modelsync``."""

from .main import run

run()
