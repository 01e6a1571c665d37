"""`brainscan-train params`: a checked copy of params.yaml with keys overridden, which is how the
training container learns of its mounted data folder (DVC reads parameters from the file only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from brainscan_training.cli import main
from brainscan_training.params import load_params

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
DATA = ["--set", "data.source=directory", "--set", "data.source_dir=/data"]


def run(capsys, *args: str, params: Path = PARAMS) -> tuple[int, str, str]:
    code = main(["--params", str(params), "params", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_data_folder_override_is_written_checked_and_loads(tmp_path, capsys):
    out = tmp_path / "params.yaml"
    code, stdout, err = run(capsys, *DATA, "--set", "seed=8", "--out", str(out))
    assert (code, err) == (0, "")
    params = load_params(out)
    assert (params.data.source, params.data.source_dir, params.seed) == ("directory", "/data", 8)
    # Everything else is the input's, in its order.
    original = yaml.safe_load(PARAMS.read_text())
    written = yaml.safe_load(out.read_text())
    assert list(written) == list(original)
    assert written["profiles"] == original["profiles"]
    assert written["data"] | {"source": "synthetic", "source_dir": "x"} == original["data"] | {
        "source_dir": "x"
    }
    assert out.read_text().startswith("# Written by `brainscan-train params` from ")
    summary = json.loads(stdout)
    assert summary["data.source_dir"] == "/data" and summary["profile"] == "quick"


def test_values_are_read_as_yaml_and_nested_sections_reached(tmp_path, capsys):
    out = tmp_path / "params.yaml"
    code, _, _ = run(
        capsys, "--set", "augmentation.flip=false", "--set", "profiles.full.epochs=2",
        "--set", "register.shadow_evidence_url=http://prometheus:9090", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    params = load_params(out, "full")
    assert params.augmentation.flip is False
    assert params.active.epochs == 2
    assert params.registration.shadow_evidence_url == "http://prometheus:9090"


def test_the_output_may_replace_the_input_and_profile_is_an_override(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())
    code, _, _ = run(capsys, *DATA, "--out", str(params), params=params)
    assert code == 0
    code = main(["--params", str(params), "--profile", "full", "params", "--out", str(params)])
    assert code == 0
    loaded = load_params(params)
    assert (loaded.profile, loaded.data.source_dir) == ("full", "/data")


def test_stdout_gets_the_yaml_with_a_dash(capsys):
    code, stdout, _ = run(capsys, *DATA, "--out", "-")
    assert code == 0
    assert yaml.safe_load(stdout)["data"]["source_dir"] == "/data"


def one_line_error(capsys, *args: str, params: Path = PARAMS) -> str:
    code, stdout, err = run(capsys, *args, params=params)
    assert code == 2 and stdout == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


def test_an_unknown_key_is_one_line_naming_it_and_what_is_known(tmp_path, capsys):
    out = tmp_path / "params.yaml"
    err = one_line_error(capsys, "--set", "data.sorce_dir=/data", "--out", str(out))
    assert err.startswith("brainscan-train params: unknown key data.sorce_dir")
    assert "source_dir" in err and "near_duplicate_distance" in err
    assert not out.exists()  # nothing written on a refusal
    err = one_line_error(capsys, "--set", "trainng.epochs=1", "--out", str(out))
    assert "unknown key trainng" in err and "warm_start" in err
    err = one_line_error(capsys, "--set", "profiles.quick.epoch=1", "--out", str(out))
    assert "unknown key profiles.quick.epoch" in err and "epochs" in err


def test_a_wrong_type_is_one_line_naming_key_and_value(tmp_path, capsys):
    out = str(tmp_path / "params.yaml")
    err = one_line_error(capsys, "--set", "data.image_size=big", "--out", out)
    assert err.startswith("brainscan-train params: data.image_size: ")
    assert "integer" in err and "'big'" in err
    err = one_line_error(capsys, "--set", "data.source=s3", "--out", out)
    assert "data.source: " in err and "'synthetic' or 'directory'" in err
    err = one_line_error(capsys, "--set", "seed.value=1", "--out", out)
    assert "seed is a value, not a section" in err


def test_the_models_own_checks_apply(tmp_path, capsys):
    # A directory source left pointing at the generator is refused as load_params refuses it.
    err = one_line_error(capsys, "--set", "data.source=directory", "--out", str(tmp_path / "p"))
    assert "data: data.source is 'directory' but data.source_dir still names the synthetic" in err


@pytest.mark.parametrize(
    ("override", "named"),
    [("data.source_dir", "expected KEY=VALUE"), ("=/data", "expected KEY=VALUE"),
     ("data..source=x", "expected KEY=VALUE"), ("seed=[1", "the value cannot be read")],
)  # fmt: skip
def test_a_malformed_override_is_one_line(tmp_path, capsys, override, named):
    err = one_line_error(capsys, "--set", override, "--out", str(tmp_path / "p"))
    assert named in err


def test_an_unreadable_params_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "none.yaml"
    err = one_line_error(capsys, "--out", "-", params=missing)
    assert "none.yaml" in err
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "not a mapping" in one_line_error(capsys, "--out", "-", params=listed)


def test_other_commands_report_a_bad_params_file_on_one_line_too(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text(PARAMS.read_text().replace("alpha: 0.35", "alpah: 0.35"))
    code = main(["--params", str(bad), "status"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "unknown key model.alpah" in err
