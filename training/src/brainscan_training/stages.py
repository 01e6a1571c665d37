"""The pipeline stages that dvc.yaml runs, each reading and writing the paths in paths.py.

One MLflow run spans a pipeline execution: `train` opens it and records its id, the later
stages resume it, so parameters, epochs, test metrics, plots and the registered version sit
together in one place.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import paths
from .params import Params, input_spec
from .tracking import connect

log = logging.getLogger(__name__)
EXPERIMENT = "brainscan-training"


def data(params: Params) -> None:
    """Generate the synthetic data set, or copy a real one in the Kaggle layout."""
    if paths.RAW_DIR.exists():
        shutil.rmtree(paths.RAW_DIR)
    if params.data.source == "directory":
        source = Path(params.data.source_dir)
        if not source.is_dir():
            raise FileNotFoundError(f"data.source_dir {source} is not a directory")
        shutil.copytree(source, paths.RAW_DIR)
        return
    from brainscan_synthetic_mri.synthetic import generate_dataset

    generate_dataset(
        paths.RAW_DIR,
        train_per_class=params.active.train_per_class,
        test_per_class=params.active.test_per_class,
        seed=params.seed,
        image_size=params.data.image_size,
    )


def prepare(params: Params) -> None:
    from .data.prepare import prepare as prepare_splits

    prepare_splits(
        paths.RAW_DIR,
        paths.PREPARED_DIR,
        params.classes,
        params.data.val_fraction,
        params.seed,
        duplicates=params.data.duplicates,
        near_duplicate_distance=params.data.near_duplicate_distance,
    )


@contextmanager
def _run(run_id: str | None = None, **start_kwargs):
    import mlflow

    connect()
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_id=run_id, **start_kwargs) as run:
        yield run


def _run_id() -> str:
    return json.loads(paths.RUN_FILE.read_text())["run_id"]


def _load(name: str, params: Params):
    from .dataset import load_split

    return load_split(paths.split_csv(name), paths.RAW_DIR, params.classes, input_spec(params))


def train(params: Params) -> None:
    import mlflow

    from .data.prepare import feedback_batches, report_metrics
    from .lineage import git_commit
    from .train import save_history, train_model
    from .weights import backbone_weights

    # Before the data is loaded and a run is opened: a missing weights file is a one-line error.
    weights = backbone_weights(params.model.weights, params.model.alpha, params.model.input_size)
    train_split, val_split = _load("train", params), _load("val", params)
    report = paths.PREPARED_DIR / "data_report.json"
    with _run(run_name=f"{params.model.name}-{params.profile}") as run:
        mlflow.set_tags({"git_commit": git_commit() or "unknown", "profile": params.profile})
        mlflow.log_params(params.flat())
        if report.is_file():
            summary = json.loads(report.read_text())
            mlflow.log_artifact(str(report), "data")
            mlflow.log_metrics(report_metrics(summary))
            mlflow.set_tag("data.feedback_batches", ",".join(feedback_batches(summary)))
        _log_dataset(params, train_split, "training")
        _log_dataset(params, val_split, "validation")
        warm_model, warm_source = _warm_start_model(params)
        mlflow.set_tag("warm_start_from", warm_source)
        model, history = train_model(
            params, train_split, val_split, warm_start=warm_model, weights=weights
        )
        paths.TRAIN_DIR.mkdir(parents=True, exist_ok=True)
        model.save(paths.KERAS_MODEL)
        save_history(history, paths.HISTORY_FILE)
        paths.RUN_FILE.write_text(json.dumps({"run_id": run.info.run_id}) + "\n")


def _warm_start_model(params: Params):
    """The production model's Keras weights when asked for and compatible, else (None, why not)."""
    if params.warm_start == "none":
        return None, "none"
    import tempfile

    import keras
    from mlflow import MlflowClient

    from .registry import PRODUCTION, Registry

    client = MlflowClient()
    registry = Registry(client, params.model.name)
    version = registry.alias_version(PRODUCTION)
    if version is None:
        return None, "none (no production version)"
    run_id = client.get_model_version(params.model.name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "keras/model.keras", tmp)
        except Exception as exc:
            log.warning("production v%s has no Keras model to start from: %s", version, exc)
            return None, f"none (production v{version} has no Keras model)"
        previous = keras.models.load_model(path)
    if not _same_architecture(previous, params):
        return None, f"none (production v{version} has another architecture)"
    log.info("warm start from %s version %s", params.model.name, version)
    return previous, f"{params.model.name}@{version}"


def _same_architecture(previous, params: Params) -> bool:
    """Same input, classes and layer shapes (alpha, dropout-free weights) as params would build."""
    from .model import build_model

    fresh = build_model(
        len(params.classes), params.model.input_size, params.model.alpha, params.model.dropout
    )
    return tuple(previous.input_shape) == tuple(fresh.input_shape) and [
        tuple(w.shape) for w in previous.weights
    ] == [tuple(w.shape) for w in fresh.weights]


def _log_dataset(params: Params, split, context: str) -> None:
    import mlflow
    import pandas as pd

    frame = pd.DataFrame({"path": split.paths, "label": [params.classes[i] for i in split.labels]})
    with warnings.catch_warnings():
        # MLflow's two local-file source classes both claim a path; either is right here.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        dataset = mlflow.data.from_pandas(
            frame, source=str(paths.RAW_DIR.resolve()), name=f"brainscan-{context}"
        )
    mlflow.log_input(dataset, context=context)


def evaluate(params: Params) -> None:
    import keras
    import mlflow

    from .evaluate import Evaluation, write_reports

    test = _load("test", params)
    model = keras.models.load_model(paths.KERAS_MODEL)
    probabilities = model.predict(test.images.astype(np.float32), batch_size=64, verbose=0)
    metrics = write_reports(
        Evaluation(params.classes, test.labels, probabilities), paths.REPORTS_DIR
    )
    log.info("test accuracy %.4f, macro F1 %.4f", metrics["accuracy"], metrics["macro_f1"])
    with _run(_run_id()):
        mlflow.log_metrics({f"test.{k}": v for k, v in metrics.items() if not np.isnan(v)})
        mlflow.log_artifacts(str(paths.REPORTS_DIR / "plots"), "evaluation")


def export(params: Params) -> None:
    import keras
    import mlflow
    from brainscan_manifest import Lineage

    from .export import check_parity, export_package
    from .lineage import dvc_data_hash, git_commit

    model = keras.models.load_model(paths.KERAS_MODEL)
    metrics = json.loads(paths.METRICS_FILE.read_text())
    run_id = _run_id()
    onnx_path, manifest = export_package(
        model,
        paths.EXPORT_DIR,
        params.classes,
        name=params.model.name,
        input_spec=input_spec(params),
        default_threshold=params.model.default_threshold,
        opset=params.export.opset,
        metrics={k: v for k, v in metrics.items() if v is not None},
        lineage=Lineage(
            git_commit=git_commit(),
            data_hash=dvc_data_hash(),
            params={**params.flat(), **_data_lineage()},
            run_id=run_id,
            warm_start_from=_run_tag(run_id, "warm_start_from"),
        ),
    )
    test = _load("test", params)
    parity = check_parity(model, onnx_path, test.images[: params.export.parity_images])
    paths.PARITY_FILE.parent.mkdir(parents=True, exist_ok=True)
    paths.PARITY_FILE.write_text(json.dumps({**asdict(parity), "passed": parity.passed}, indent=2))
    with _run(run_id):
        mlflow.log_metrics(
            {
                "parity.max_abs_diff_probabilities": parity.max_abs_diff_probabilities,
                "parity.max_abs_diff_feature_map": parity.max_abs_diff_feature_map,
            }
        )
    if not parity.passed:
        raise RuntimeError(
            "ONNX parity check failed: "
            f"max |Keras - ONNX| = {parity.max_abs_diff_probabilities:.2e}"
            f" (tolerance {parity.tolerance:.0e}), label agreement {parity.label_agreement:.3f}"
        )
    log.info("exported %s (sha256 %s), parity %.2e", onnx_path, manifest.onnx_sha256[:12],
             parity.max_abs_diff_probabilities)  # fmt: skip


def _data_lineage() -> dict[str, object]:
    """What the data itself adds to the lineage: the reviewers' feedback batches it holds
    (``data.feedback_batches``, from data_report.json; not a parameter of params.yaml)."""
    from .data.prepare import feedback_batches

    report = paths.PREPARED_DIR / "data_report.json"
    summary = json.loads(report.read_text()) if report.is_file() else {}
    return {"data.feedback_batches": feedback_batches(summary)}


def guard(params: Params) -> None:
    """Fit the out-of-distribution guard, evaluate it, and write the package that is served."""
    import mlflow

    from .dataset import image_sizes
    from .ood.build import GuardSettings, fit_package_guard, write_guarded_package
    from .ood.corpus import build_corpus
    from .ood.cues import mobilenet_cues
    from .ood.evaluation import evaluate_guard, with_metrics, write_reports

    settings = GuardSettings(**params.ood.model_dump(), seed=params.seed)
    train_split, val_split, test = (_load(name, params) for name in ("train", "val", "test"))
    manifest, fit = fit_package_guard(
        paths.EXPORT_DIR,
        mobilenet_cues,
        train_split.images,
        val_split.images,
        settings,
        split="validation split of the training data",
        fit_sizes=image_sizes(paths.RAW_DIR, train_split.paths),
    )
    report = evaluate_guard(
        fit.model,
        manifest,
        fit.spec,
        test.images,
        build_corpus(params.seed),
        test_sizes=image_sizes(paths.RAW_DIR, test.paths),
    )
    metrics = write_reports(report, paths.REPORTS_DIR)
    spec = with_metrics(fit.spec, metrics)
    onnx_path, guarded = write_guarded_package(paths.PACKAGE_DIR, fit.model, manifest, spec)
    with _run(_run_id()):
        mlflow.log_metrics({f"ood.{key}": value for key, value in metrics.items()})
        mlflow.log_artifact(str(paths.OOD_FILE), "evaluation")
        mlflow.log_artifact(str(paths.REPORTS_DIR / "plots" / "ood_scores.png"), "evaluation")
        mlflow.log_artifact(str(paths.REPORTS_DIR / "plots" / "ood_corpus.csv"), "evaluation")
    log.info(
        "guard: threshold %.3f, test false alarms %.2f %%, corpus detected %d/%d%s",
        spec.threshold,
        100 * report.test_false_alarm_rate,
        len(report.corpus) - len(report.missed),
        len(report.corpus),
        f" (missed: {', '.join(report.missed)})" if report.missed else "",
    )
    log.info("guarded package %s (sha256 %s)", onnx_path, guarded.onnx_sha256[:12])


def _run_tag(run_id: str, key: str) -> str | None:
    from mlflow import MlflowClient

    connect()
    return MlflowClient().get_run(run_id).data.tags.get(key)


def _log_signature(params: Params) -> None:
    """The ONNX model as an MLflow model too, so the UI shows its signature and an input example.

    The served package stays the plain `model_package` artifacts: MLflow re-serialises ONNX
    weights into a side file, which would change the bytes whose sha256 the manifest records.
    """
    import mlflow
    import onnx
    from brainscan_manifest.verify import load_package
    from brainscan_manifest.verify import smoke_input as example_input
    from mlflow.models import infer_signature

    onnx_path, manifest = load_package(paths.PACKAGE_DIR)
    example = example_input(manifest, batch=1)
    probabilities = np.full((1, len(manifest.classes)), 1.0 / len(manifest.classes), np.float32)
    mlflow.onnx.log_model(
        onnx.load(str(onnx_path)),
        name="onnx_model",
        signature=infer_signature(example, probabilities),
        input_example=example,
    )


def _shadow_gate(params: Params) -> str | None:
    """The shadow gate in words, when params set one (the candidate then waits in shadow)."""
    from .shadow_evidence import ShadowGate

    settings = params.registration
    gate = ShadowGate(settings.shadow_min_requests, settings.shadow_min_agreement)
    return gate.describe() if gate.enabled else None


def register(params: Params) -> None:
    import mlflow
    from brainscan_manifest.verify import load_package
    from mlflow import MlflowClient

    from .registry import Registry, split_scorer, write_decision

    parity = json.loads(paths.PARITY_FILE.read_text())
    run_id = _run_id()
    with _run(run_id):
        mlflow.log_artifact(str(paths.KERAS_MODEL), "keras")
        _log_signature(params)
        registry = Registry(MlflowClient(), params.model.name)
        batches = _data_lineage()["data.feedback_batches"]
        version = registry.register_package(
            paths.PACKAGE_DIR,
            run_id,
            {
                "parity.passed": str(parity["passed"]).lower(),
                "lineage.feedback_batches": ",".join(batches),
            },
        )
        candidate = load_package(paths.PACKAGE_DIR)
        scorer = split_scorer(paths.split_csv("test"), paths.RAW_DIR, params.classes)
        if params.registration.promote == "never":
            decision = registry.mark_challenger(
                version, "promotion disabled by params (register.promote: never)"
            )
        else:
            decision = registry.decide(
                version,
                candidate,
                scorer,
                parity_passed=bool(parity["passed"]),
                min_improvement=params.registration.min_improvement,
                hold_for_shadow=_shadow_gate(params),
            )
        mlflow.set_tags({"registered_version": version, "promotion": decision.alias})
    write_decision(decision, paths.REGISTRATION_FILE, model_name=params.model.name)
    log.info(
        "%s version %s -> %s (%s)", params.model.name, version, decision.alias, decision.reason
    )


STAGES = {
    "data": data,
    "prepare": prepare,
    "train": train,
    "evaluate": evaluate,
    "export": export,
    "guard": guard,
    "register": register,
}
