"""Dockerfiles read as data: global ARGs, stages, instructions, labels, copied paths; and which
Dockerfile, package, port and health endpoint belong to each image."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# component -> (Dockerfile, workspace package, module, port, health path, port setting)
SERVICES = {
    "gateway": ("services/gateway/Dockerfile", "brainscan-gateway", "brainscan_gateway",
                8000, "/healthz", "GATEWAY_PORT"),
    "inference": ("services/inference/Dockerfile", "brainscan-inference", "brainscan_inference",
                  8001, "/v2/health/live", "INFERENCE_PORT"),
    "model-sync": ("services/model-sync/Dockerfile", "brainscan-model-sync",
                   "brainscan_modelsync", 8002, "/healthz", "MODELSYNC_PORT"),
}  # fmt: skip
DOCKERFILES = {
    **{name: spec[0] for name, spec in SERVICES.items()},
    "mlflow": "infra/mlflow/Dockerfile",
    "training": "training/Dockerfile",
}


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    """A Dockerfile split into its global ARGs and its stages (continuation lines joined)."""

    path: Path
    global_args: list[str]
    stages: list[Stage]

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        global_args: list[str] = []
        stages: list[Stage] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, arguments = line.partition(" ")
            keyword, arguments = keyword.upper(), " ".join(arguments.split())
            if keyword == "FROM":
                parts = arguments.split()
                name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
                stages.append(Stage(base=parts[0], name=name))
            elif not stages:
                assert keyword == "ARG", f"{path}: {keyword} before the first FROM"
                global_args.append(arguments)
            else:
                stages[-1].instructions.append(Instruction(keyword, arguments))
        return cls(path, global_args, stages)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def runs(self) -> list[str]:
        return [run for stage in self.stages for run in stage.all("RUN")]

    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for argument in self.final.all("LABEL"):
            for pair in shlex.split(argument):
                key, _, value = pair.partition("=")
                labels[key] = value
        return labels

    def copy_sources(self) -> list[str]:
        """Paths copied from the build context (not from another stage)."""
        sources = []
        for stage in self.stages:
            for argument in stage.all("COPY"):
                words = [w for w in argument.split() if not w.startswith("--")]
                if "--from=" not in argument:
                    sources.extend(words[:-1])
        return sources
