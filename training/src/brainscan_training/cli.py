"""`brainscan-train`: run a pipeline stage, or act on the registry (promote, roll back, bring
your own model). Errors a user can fix print one line and exit 2, never a stack trace."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from .params import DEFAULT_PARAMS, load_params

log = logging.getLogger("brainscan_training")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainscan-train", description=__doc__)
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file")
    parser.add_argument("--profile", help="override params.yaml's profile (quick, full)")
    parser.add_argument(
        "--model", help="registered model name (default: params' model.name; external: manifest's)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for stage in ("data", "prepare", "train", "evaluate", "export", "guard", "register"):
        commands.add_parser(stage, help=f"run the pipeline's {stage} stage")

    promote = commands.add_parser("promote", help="move `production` to a version (checks run)")
    promote.add_argument("--version", required=True)
    promote.add_argument("--reason", default="manual promotion")
    rollback = commands.add_parser("rollback", help="move `production` back to an older version")
    rollback.add_argument("--to", required=True, dest="version")
    for command in (promote, rollback):
        command.add_argument(
            "--force",
            action="store_true",
            help="serve it even if its export failed parity or its shadow evidence falls short "
            "(what was overridden is tagged on the version)",
        )

    external = commands.add_parser(
        "register-external", help="register any ONNX image classifier that has a manifest"
    )
    external.add_argument("--onnx", type=Path, required=True)
    external.add_argument("--manifest", type=Path, required=True)
    external.add_argument(
        "--promote", action="store_true", help="apply the promotion gate on the test split"
    )
    reference = commands.add_parser(
        "reference",
        help="give a model from elsewhere the out-of-distribution guard (a new package)",
    )
    reference.add_argument("--onnx", type=Path, required=True)
    reference.add_argument("--manifest", type=Path, required=True)
    reference.add_argument(
        "--images", type=Path, required=True, help="folder of in-distribution JPEG/PNG images"
    )
    reference.add_argument(
        "--out", type=Path, required=True, help="where to write the guarded package"
    )
    reference.add_argument(
        "--tap",
        action="append",
        default=[],
        help="a 4-D tensor of the graph whose statistics are a cue (repeat for several)",
    )
    reference.add_argument(
        "--cues",
        choices=("generic", "mobilenetv2"),
        default="generic",
        help="mobilenetv2: the project's cue plan, for an exported brainscan MobileNetV2",
    )
    reference.add_argument("--false-alarm-rate", type=float, help="default: params' ood")
    reference.add_argument(
        "--no-appearance", action="store_true", help="skip the appearance network (no TF)"
    )
    overrides = commands.add_parser(
        "params",
        help="write a checked copy of the params file with keys overridden, e.g. a mounted data "
        "folder for a container (--set data.source=directory --set data.source_dir=/data)",
    )
    overrides.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="dotted key and a YAML value (repeat for several); applied in order",
    )
    overrides.add_argument(
        "--out",
        type=Path,
        required=True,
        help="where to write it (it may be the --params file itself; - for stdout)",
    )
    feedback = commands.add_parser(
        "feedback", help="reviewers' feedback from the gateway into the data set (docs/data.md)"
    )
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    feedback_import = feedback_commands.add_parser(
        "import",
        help="copy the feedback images into data.source_dir as new Training images, "
        "de-duplicated, never a copy of a Testing image, with a batch manifest",
    )
    feedback_import.add_argument(
        "--from", dest="feedback_dir", type=Path, required=True,
        help="the gateway's feedback folder (GATEWAY_FEEDBACK_DIR)",
    )  # fmt: skip
    feedback_import.add_argument(
        "--into", type=Path, help="the data set folder (default: params' data.source_dir)"
    )
    feedback_import.add_argument(
        "--accepted-only", action="store_true",
        help="only records a curator marked accepted: true (default: all but accepted: false)",
    )  # fmt: skip
    status = commands.add_parser(
        "status", help="show the production and challenger versions, and the shadow evidence"
    )
    for command in (promote, status):
        command.add_argument(
            "--evidence-url", help="where the shadow figures are read (params: shadow_evidence_url)"
        )
        command.add_argument(
            "--evidence-kind",
            choices=("gateway", "prometheus"),
            help="what answers there (register.shadow_evidence_kind)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    try:
        if args.command == "params":
            return _write_params(args)
        params = load_params(args.params, args.profile)
        return _dispatch(args, params)
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        sys.stderr.write(f"brainscan-train {args.command}: {_one_line(exc)}\n")
        return 2


def _one_line(exc: Exception) -> str:
    from pydantic import ValidationError

    from .params import describe_validation_error

    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    return " ".join(str(exc).split("\n"))


def _write_params(args: argparse.Namespace) -> int:
    """`brainscan-train params`: the params file with ``--set`` applied, validated as every stage
    validates it, written where `dvc repro` reads it. A container whose params.yaml is mounted
    read-only (or baked into the image) gets its data folder this way: DVC reads parameters from
    the file only (no environment variables), and `dvc exp run -S` needs git, which the image
    has not."""
    import yaml

    from .params import apply_overrides, validate_params

    try:
        raw = yaml.safe_load(args.params.read_text())
    except yaml.YAMLError as exc:
        raise ParamsFileError(f"{args.params} is not YAML: {exc}") from None
    except OSError as exc:
        raise ParamsFileError(f"cannot read {args.params}: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise ParamsFileError(f"{args.params} is not a mapping of keys (as params.yaml is)")
    overrides = [*args.overrides, *([f"profile={args.profile}"] if args.profile else [])]
    updated = apply_overrides(raw, overrides)
    params = validate_params(updated)
    header = (
        f"# Written by `brainscan-train params` from {args.params}"
        + "".join(f" --set {item}" for item in overrides)
        + "\n"
    )
    text = header + yaml.safe_dump(updated, sort_keys=False)
    if str(args.out) == "-":
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text)
    except OSError as exc:
        raise ParamsFileError(f"cannot write {args.out}: {exc.strerror}") from None
    summary = {
        "params": str(args.out),
        "from": str(args.params),
        "set": overrides,
        "profile": params.profile,
        "data.source": params.data.source,
        "data.source_dir": params.data.source_dir,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


class ParamsFileError(ValueError):
    """The params file itself cannot be read."""


def _is_user_error(exc: Exception) -> bool:
    from brainscan_manifest.verify import PackageError
    from pydantic import ValidationError

    from .data.checks import DataCheckError
    from .data.feedback import FeedbackImportError
    from .ood.cues import CuePlanError
    from .ood.external import GuardInputError
    from .params import ParamsOverrideError
    from .registry import RegistryError
    from .tracking import TrackingUnavailable

    user_errors = (TrackingUnavailable, RegistryError, PackageError, ValidationError,
                   FileNotFoundError, DataCheckError, GuardInputError, CuePlanError,
                   ParamsOverrideError, ParamsFileError, FeedbackImportError)  # fmt: skip
    return isinstance(exc, user_errors)


def _dispatch(args: argparse.Namespace, params) -> int:
    from .stages import STAGES

    if args.command in STAGES:
        STAGES[args.command](params)
        return 0
    if args.command == "reference":
        return _reference(args, params)
    if args.command == "feedback":
        return _feedback_import(args, params)
    registry = _registry(args.model, params)
    if args.command == "promote":
        decision = _promote(registry, args, params)
    elif args.command == "rollback":
        reason = f"rollback to version {args.version}"
        decision = registry.set_production(args.version, reason, force=args.force)
    elif args.command == "register-external":
        decision = _register_external(registry, args, params)
    else:
        sys.stdout.write(json.dumps(_status(registry, args, params)) + "\n")
        return 0
    sys.stdout.write(json.dumps(decision.to_dict()) + "\n")
    return 0


def _evidence_source(args, params) -> tuple[str, str | None]:
    settings = params.registration
    return (args.evidence_kind or settings.shadow_evidence_kind,
            args.evidence_url or settings.shadow_evidence_url)  # fmt: skip


def _promote(registry, args, params):
    """Move production to ``args.version``; with the shadow gate on, only on enough evidence
    from its time in shadow (or with --force, which is tagged)."""
    from .registry import RegistryError
    from .shadow_evidence import EvidenceUnavailable, ShadowGate, read_evidence

    settings = params.registration
    gate = ShadowGate(settings.shadow_min_requests, settings.shadow_min_agreement)
    notes: dict[str, str] = {}
    if gate.enabled:
        kind, url = _evidence_source(args, params)
        if url is None:
            shortfall = "no shadow evidence source is set (register.shadow_evidence_url)"
        else:
            try:
                evidence = read_evidence(kind, url, args.version)
            except EvidenceUnavailable as exc:
                if not args.force:
                    raise
                shortfall = str(exc)
            else:
                notes.update(evidence.tags())
                shortfall = gate.shortfall(evidence)
        if shortfall is not None:
            if not args.force:
                raise RegistryError(
                    f"version {args.version} not promoted: {shortfall}; the gate asks for "
                    f"{gate.describe()}. Leave it in shadow longer, or promote with --force "
                    "(tagged on the version)"
                )
            notes["promotion.forced"] = "true"
            notes["promotion.forced_over"] = shortfall
    return registry.set_production(args.version, args.reason, force=args.force, notes=notes)


def _status(registry, args, params) -> dict[str, object]:
    """Both aliases, and the challenger's shadow evidence when a source is set."""
    from .registry import CHALLENGER, PRODUCTION
    from .shadow_evidence import EvidenceUnavailable, ShadowGate, read_evidence

    status: dict[str, object] = {"model": registry.model_name}
    status.update({alias: registry.alias_version(alias) for alias in (PRODUCTION, CHALLENGER)})
    kind, url = _evidence_source(args, params)
    challenger = status[CHALLENGER]
    if url is not None and challenger is not None:
        settings = params.registration
        gate = ShadowGate(settings.shadow_min_requests, settings.shadow_min_agreement)
        try:
            evidence = read_evidence(kind, url, str(challenger))
        except EvidenceUnavailable as exc:
            status["shadow"] = {"error": str(exc)}
        else:
            shortfall = gate.shortfall(evidence) if gate.enabled else None
            status["shadow"] = {**evidence.to_dict(), "gate": gate.describe() if gate.enabled
                                else None, "shortfall": shortfall}  # fmt: skip
    return status


def _feedback_import(args, params) -> int:
    from .data.feedback import FeedbackImportError, import_feedback

    into = args.into
    if into is None:
        if params.data.source != "directory":
            raise FeedbackImportError(
                "feedback goes into a real data set: set data.source: directory and "
                "data.source_dir in params.yaml, or pass --into"
            )
        into = Path(params.data.source_dir)
    result = import_feedback(
        args.feedback_dir,
        into,
        params.classes,
        accepted_only=args.accepted_only,
        near_duplicate_distance=params.data.near_duplicate_distance,
    )
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    return 0


def _reference(args, params) -> int:
    from .ood.build import GuardSettings
    from .ood.external import guard_external

    options = params.ood.model_dump()
    if args.false_alarm_rate is not None:
        options["false_alarm_rate"] = args.false_alarm_rate
    if args.no_appearance:
        options["appearance"] = False
    result = guard_external(
        args.onnx,
        args.manifest,
        args.images,
        args.out,
        GuardSettings(**options, seed=params.seed),
        taps=args.tap,
        plan=args.cues,
    )
    summary = {
        "package": str(args.out),
        "onnx_sha256": result.manifest.onnx_sha256,
        "threshold": result.manifest.ood.threshold,
        "cues": [cue.name for cue in result.manifest.ood.cue_names],
        **result.metrics,
        "missed": result.missed,
        "next": f"brainscan-train register-external --onnx {result.onnx_path} "
        f"--manifest {args.out / 'manifest.json'}",
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def _registry(name: str | None, params):
    from mlflow import MlflowClient

    from .registry import Registry
    from .tracking import connect

    return Registry(MlflowClient(connect()), name or params.model.name)


def _register_external(registry, args, params):
    """Bring your own model: same checks, same gate; a challenger unless --promote wins."""
    import shutil

    import mlflow
    from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
    from brainscan_manifest.verify import verify_package

    from . import paths
    from .registry import split_scorer

    manifest = Manifest.load(args.manifest)
    if args.model is None:
        registry.model_name = manifest.name
    package = verify_package(args.onnx, manifest)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        shutil.copyfile(package.onnx_path, staged / MODEL_FILE)
        manifest.save(staged / MANIFEST_FILE)
        mlflow.set_experiment("brainscan-external-models")
        with mlflow.start_run(run_name=f"external-{manifest.name}") as run:
            mlflow.set_tags({"source": "external", "onnx_file": str(args.onnx)})
            version = registry.register_package(staged, run.info.run_id, {"source": "external"})
        if not args.promote:
            return registry.mark_challenger(version, "external model registered without --promote")
        scorer = split_scorer(paths.split_csv("test"), paths.RAW_DIR, params.classes)
        return registry.decide(version, (staged / MODEL_FILE, manifest), scorer, parity_passed=True)


if __name__ == "__main__":
    sys.exit(main())
