"""The one Dockerfile (infra/images/Dockerfile) read as data: global ARGs, stages, instructions,
labels, copied paths; each component's image as the stages it is built from; and which package,
port and health endpoint belong to each image."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = "infra/images/Dockerfile"

# component -> (workspace package, module, port, health path, port setting)
SERVICES = {
    "gateway": ("brainscan-gateway", "brainscan_gateway", 8000, "/healthz", "GATEWAY_PORT"),
    "inference": ("brainscan-inference", "brainscan_inference", 8001, "/v2/health/live",
                  "INFERENCE_PORT"),
    "model-sync": ("brainscan-model-sync", "brainscan_modelsync", 8002, "/healthz",
                   "MODELSYNC_PORT"),
}  # fmt: skip
# The components built from workspace packages, and every component.
WORKSPACE_COMPONENTS = [*SERVICES, "training"]
COMPONENTS = [*WORKSPACE_COMPONENTS, "mlflow"]


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass(eq=False)  # a stage is itself: compared by identity
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """The stage's own ENV settings (key=value form)."""
        settings: dict[str, str] = {}
        for argument in self.all("ENV"):
            for pair in shlex.split(argument):
                key, _, value = pair.partition("=")
                settings[key] = value
        return settings


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

    def stage(self, name: str) -> Stage:
        (stage,) = [s for s in self.stages if s.name == name]
        return stage

    def image(self, component: str) -> Image:
        return Image(self, component)


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass
class Image:
    """One component's image: the stages its final stage descends from (`chain`, oldest first,
    whose configuration the image inherits) and every stage its build runs (`built`)."""

    dockerfile: Dockerfile
    component: str

    def _parent(self, stage: Stage) -> Stage | None:
        base = _substitute(stage.base, {"COMPONENT": self.component})
        earlier = self.dockerfile.stages[: self.dockerfile.stages.index(stage)]
        named = [s for s in earlier if s.name == base]
        return named[-1] if named else None

    def _lineage(self, stage: Stage) -> list[Stage]:
        lineage = [stage]
        while (parent := self._parent(lineage[0])) is not None:
            lineage.insert(0, parent)
        return lineage

    @property
    def chain(self) -> list[Stage]:
        return self._lineage(self.dockerfile.stages[-1])

    @property
    def final(self) -> Stage:
        """The image's instructions as one stage: the chain's, in order."""
        instructions = [i for stage in self.chain for i in stage.instructions]
        return Stage(self.chain[0].base, self.component, instructions)

    @property
    def built(self) -> list[Stage]:
        """Every stage the build needs: the chain, the stages they copy from, their parents."""
        needed: list[Stage] = []
        todo = list(self.chain)
        while todo:
            stage = todo.pop()
            if stage in needed:
                continue
            needed.append(stage)
            todo += self._lineage(stage)[:-1]
            for argument in stage.all("COPY"):
                source = re.match(r"--from=(\S+)", argument)
                if source:
                    todo.append(self.dockerfile.stage(source.group(1)))
        return [stage for stage in self.dockerfile.stages if stage in needed]

    @property
    def build_env(self) -> dict[str, str]:
        """What the builder's ENV says (PACKAGE, SOURCE_DIR, IMPORTS for a workspace package)."""
        settings: dict[str, str] = {}
        for stage in self.built:
            if stage not in self.chain:
                settings.update(stage.env())
        return settings

    def runs(self) -> list[str]:
        return [run for stage in self.built for run in stage.all("RUN")]

    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for argument in self.final.all("LABEL"):
            for pair in shlex.split(_substitute(argument, {"COMPONENT": self.component})):
                key, _, value = pair.partition("=")
                labels[key] = value
        return labels

    def copy_sources(self) -> list[str]:
        """Paths copied from the build context (not from another stage), variables resolved."""
        sources = []
        for stage in self.built:
            for argument in stage.all("COPY"):
                words = [w for w in argument.split() if not w.startswith("--")]
                if "--from=" not in argument:
                    sources.extend(_substitute(w, self.build_env) for w in words[:-1])
        return sources
