"""Bundled models: the registry, packing (fp16, recipe, size limit), loading packed
weights, `madgan score SCAN` with the bundled model, `madgan info` and `train --init NAME`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from madgan_core.cli import main
from madgan_core.errors import CheckpointError
from madgan_core.model import bundled, pack
from madgan_core.model.checkpoint import (
    load_model,
    make_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from madgan_core.model.networks import build_critic, build_generator
from tests.conftest import REFERENCE

from .test_bad_inputs import brain_scan

REPO = Path(__file__).resolve().parents[2]
RECIPE = {
    "preset": "demo",
    "cohort": {
        "command": "madgan demo --anatomy all",
        "seed": 0,
        "anatomies": ["mni152", "colin27"],
        "voxel_mm": 2.0,
        "counts": {"healthy": 160, "ad": 60, "mets": 40, "various": 40},
    },
    "device": "cuda",
    "precision": "bf16",
    "commit": "abc123",
}


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory, tiny_config) -> Path:
    """A tiny model file as training writes it: generator, critic, optimizers, RNG,
    a healthy reference and a training domain."""
    torch.manual_seed(3)
    cfg = tiny_config()
    generator, critic = build_generator(cfg.model).eval(), build_critic(cfg.model)
    optim = torch.optim.Adam(generator.parameters())
    generator(torch.zeros(1, cfg.model.in_slices, 32, 32)).sum().backward()  # optimizer state
    optim.step()
    domain = {
        "n": 12,
        "slice_mm": [4.0, 4.0],
        "brain_z_mm": 120.0,
        "skull": [0, 12],
        "deciles_mean": [0.1] * 9,
        "deciles_std": [0.01] * 9,
    }
    reference = {**REFERENCE, "sequences": ["T1"] * 12 + ["T1c"] * 8, "domain": domain}
    record = make_checkpoint(
        cfg,
        7,
        generator,
        critic,
        optim_g=optim,
        include_rng=True,
        healthy_reference=reference,
        training_domain=domain,
    )
    return save_checkpoint(record, tmp_path_factory.mktemp("run") / "model.pt")


@pytest.fixture(scope="module")
def packed_file(trained_file, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bundled_models")
    return pack.pack_model(trained_file, folder / "phantom-demo.pt", RECIPE).path


@pytest.fixture
def installed(packed_file, monkeypatch) -> Path:
    """The registry's folder pointed at the packed tiny model."""
    monkeypatch.setattr(bundled, "bundled_folder", lambda: packed_file.parent)
    return packed_file


@pytest.fixture
def not_installed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bundled, "bundled_folder", lambda: tmp_path / "empty")


# ---------------------------------------------------------------- registry


def test_registry_and_the_real_package_folder():
    assert bundled.bundled_names() == ("phantom-demo",)
    entry = bundled.bundled_entry("phantom-demo")
    assert entry.display_name == "Bundled: phantom demo, T1/T1c, 2 mm"
    assert "not for patients" in entry.intended_use
    folder = bundled.bundled_folder()
    assert folder == REPO / "madgan_core" / "model" / "bundled_models"
    with pytest.raises(CheckpointError, match="no bundled model is called 'nope'"):
        bundled.bundled_entry("nope")


def test_missing_bundled_file_is_one_clear_error(not_installed):
    with pytest.raises(CheckpointError) as err:
        bundled.bundled_path("phantom-demo")
    assert "the bundled model 'phantom-demo' is not in this installation (" in str(err.value)
    assert bundled.default_model() is None
    with pytest.raises(CheckpointError, match="madgan demo"):
        bundled.require_default_model()


def test_resolve_model_names_and_paths(installed, tmp_path, monkeypatch):
    assert bundled.is_bundled("phantom-demo") and not bundled.is_bundled("model.pt")
    assert not bundled.is_bundled(None)
    assert bundled.resolve_model("phantom-demo") == installed
    assert bundled.resolve_model(Path("phantom-demo")) == installed
    assert bundled.resolve_model(tmp_path / "m.pt") == tmp_path / "m.pt"
    assert bundled.default_model() == installed
    assert bundled.bundled_entry_of(installed).name == "phantom-demo"
    assert bundled.bundled_entry_of(tmp_path / "m.pt") is None
    assert bundled.model_label(installed).startswith("Bundled: phantom demo, T1/T1c, 2 mm (")
    # a file of that name in the working directory wins over the name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "phantom-demo").write_bytes(b"")
    assert not bundled.is_bundled("phantom-demo")
    assert bundled.resolve_model("phantom-demo") == Path("phantom-demo")


def test_looks_like_model(installed, tmp_path):
    assert bundled.looks_like_model("phantom-demo")
    assert bundled.looks_like_model(tmp_path / "model.pt")
    assert bundled.looks_like_model(tmp_path / "model.pth")
    assert not bundled.looks_like_model(tmp_path / "scan.nii.gz")
    assert not bundled.looks_like_model(tmp_path / "scan.mgz")


# ---------------------------------------------------------------- packing


def test_pack_halves_weights_drops_states_and_records_the_recipe(trained_file, packed_file):
    source, packed = read_checkpoint(trained_file), read_checkpoint(packed_file)
    assert packed_file.stat().st_size < trained_file.stat().st_size
    for name in ("generator", "critic"):
        for key, value in packed[name].items():
            original = source[name][key]
            if original.is_floating_point():
                assert value.dtype == torch.float16, key
                torch.testing.assert_close(value.float(), original, atol=1e-2, rtol=1e-2)
            else:  # BatchNorm's num_batches_tracked
                assert value.dtype == original.dtype and torch.equal(value, original), key
    assert any(k.endswith("num_batches_tracked") for k in packed["generator"])
    assert packed["optim_g"] is None and packed["optim_c"] is None and packed["rng"] is None
    assert source["optim_g"] is not None and source["rng"] is not None
    assert packed["config"] == source["config"] and packed["step"] == 7
    assert packed["training_domain"] == source["training_domain"]
    assert packed["healthy_reference"]["names"] == source["healthy_reference"]["names"]
    recipe = packed["recipe"]
    assert set(pack.RECIPE_KEYS) <= set(recipe)
    assert set(pack.COHORT_KEYS) <= set(recipe["cohort"])
    assert recipe["preset"] == "demo" and recipe["cohort"]["counts"]["healthy"] == 160
    assert recipe["steps"] == 7 and recipe["device"] == "cuda"  # given, or the model's
    assert recipe["packed_from_sha256"] == pack.sha256_of(trained_file)
    assert recipe["trained_at"]
    json.dumps(recipe)  # plain data


def test_packed_model_loads_as_float32_and_scores_like_the_original(
    trained_file, packed_file, tmp_path
):
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import score_scan

    scan = load_scan(brain_scan(tmp_path / "scan.nii.gz"))
    original, packed = load_model(trained_file, "cpu"), load_model(packed_file, "cpu")
    assert all(p.dtype == torch.float32 for p in packed.generator.parameters())
    assert packed.reference is not None and packed.reference.n == 20
    a = score_scan(original, scan, maps=False).scores
    b = score_scan(packed, scan, maps=False).scores
    assert a.keys() == b.keys()
    for mode in a:
        if a[mode] is None:
            continue
        assert torch.isfinite(torch.tensor(b[mode])), mode
        assert b[mode] == pytest.approx(a[mode], rel=2e-2, abs=1e-4), mode


def test_pack_refuses_above_the_limit_and_writes_nothing(trained_file, tmp_path, monkeypatch):
    dst = tmp_path / "big.pt"
    with pytest.raises(pack.ModelTooLarge, match="above the 0.0 MB"):
        pack.pack_model(trained_file, dst, RECIPE, max_bytes=1000)
    monkeypatch.setattr(pack, "MAX_BYTES", 1000)
    with pytest.raises(pack.ModelTooLarge):
        pack.pack_model(trained_file, dst, RECIPE)
    assert list(tmp_path.iterdir()) == []


def test_pack_refuses_a_recipe_that_is_not_plain_data(trained_file, tmp_path):
    with pytest.raises(CheckpointError, match="plain JSON"):
        pack.pack_model(trained_file, tmp_path / "m.pt", {"preset": object()})


def _pack_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "pack_bundled_model.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def test_pack_script(trained_file, tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(RECIPE))
    out = tmp_path / "phantom-demo.pt"
    argv = [str(trained_file), "--name", "phantom-demo", "--recipe-json", str(recipe)]
    done = _pack_script(*argv, "--out", str(out), "--steps", "9", "--count", "healthy=3")
    assert done.returncode == 0, done.stderr
    assert f"Wrote {out} (" in done.stdout and "MB)" in done.stdout
    stored = read_checkpoint(out)["recipe"]
    assert stored["steps"] == 9 and stored["preset"] == "demo" and stored["commit"] == "abc123"
    assert stored["cohort"]["counts"] == {**RECIPE["cohort"]["counts"], "healthy": 3}


def test_pack_script_refuses_a_missing_model(tmp_path):
    out = tmp_path / "x.pt"
    done = _pack_script(str(tmp_path / "nope.pt"), "--name", "phantom-demo", "--out", str(out))
    assert done.returncode == 2 and "checkpoint file not found" in done.stderr
    assert not out.exists()


# ---------------------------------------------------------------- madgan score


def test_score_a_scan_with_the_bundled_model(installed, tmp_path, capsys):
    scan = brain_scan(tmp_path / "scan.nii.gz")
    out = tmp_path / "out"
    assert main(["score", str(scan), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Model: Bundled: phantom demo, T1/T1c, 2 mm ({installed})"
    assert (out / "scores.csv").exists()
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 1


def test_score_two_scans_and_by_name(installed, tmp_path, capsys):
    scans = [brain_scan(tmp_path / f"s{i}.nii.gz", seed=i) for i in range(2)]
    out = tmp_path / "out"
    argv = ["--out", str(out), "--device", "cpu", "--no-progress"]
    assert main(["score", *map(str, scans), *argv]) == 0
    assert len((out / "scores.jsonl").read_text().splitlines()) == 2
    assert capsys.readouterr().out.startswith("Model: Bundled: phantom demo")
    out2 = tmp_path / "out2"
    assert main(["score", "phantom-demo", str(scans[0]), "--out", str(out2), *argv[2:]]) == 0
    assert capsys.readouterr().out.startswith("Model: Bundled: phantom demo")


def test_score_with_a_model_file_prints_no_model_line(trained_file, tmp_path, capsys):
    scan = brain_scan(tmp_path / "scan.nii.gz")
    argv = ["score", str(trained_file), str(scan), "--out", str(tmp_path / "o")]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 0
    assert not capsys.readouterr().out.startswith("Model:")


def test_score_without_a_model_when_none_is_bundled(not_installed, tmp_path, capsys):
    scan = brain_scan(tmp_path / "scan.nii.gz")
    out = tmp_path / "out"
    assert main(["score", str(scan), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == f"madgan score: error: {bundled.NO_MODEL}\n"
    assert not out.exists()


def test_score_a_model_without_scans(trained_file, capsys):
    assert main(["score", str(trained_file)]) == 2
    assert "no scans to score" in capsys.readouterr().err


# ---------------------------------------------------------------- calibrate, evaluate


def test_calibrate_refuses_the_bundled_model(installed, tmp_path, capsys):
    before = installed.read_bytes()
    for model in ("phantom-demo", str(installed)):
        argv = ["calibrate", model, "--manifest", str(tmp_path / "m.csv"), "--device", "cpu"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "bundled model 'phantom-demo'" in err and "calibrate the copy" in err
    assert installed.read_bytes() == before


def test_evaluate_takes_a_bundled_name(installed, tmp_path, monkeypatch):
    from madgan_core.commands import evaluate

    seen = {}

    def fake(model, manifest, out, *args, **kwargs):
        seen.update(model=model, out=out)

    monkeypatch.setattr(evaluate, "evaluate_with_progress", fake)
    assert main(["evaluate", "phantom-demo", "--manifest", str(tmp_path / "m.csv")]) == 0
    assert seen == {"model": installed, "out": Path("madgan_evaluation")}


# ---------------------------------------------------------------- madgan info


def test_info_text_and_json_of_a_plain_model(trained_file, capsys):
    assert main(["info", str(trained_file)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"File: {trained_file} (")
    assert "variant none, 4 base channels" in text and "slices 32 x 32 at 6 mm" in text
    assert "Training: 7 steps, seed 0, device cpu, precision fp32" in text
    assert "Calibration: 20 controls (T1: 12, T1c: 8)" in text and "controls at 4.0 mm" in text
    assert "Training domain: 12 training scans, slice spacing 4.0 mm, sequences T1, T1c" in text
    assert "Intended use" not in text and "Recipe" not in text
    assert main(["info", str(trained_file), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] is None and card["architecture"]["weights_dtype"] == "float32"
    assert card["calibration"]["per_sequence"] == {"T1": 12, "T1c": 8}
    assert card["training_domain"]["acquisitions"] == 12
    assert card["training"]["steps"] == 7 and card["size_bytes"] == trained_file.stat().st_size


def test_info_of_the_bundled_model(installed, capsys):
    assert main(["info", "phantom-demo"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Model: Bundled: phantom demo, T1/T1c, 2 mm (bundled as 'phantom-demo')")
    assert "weights float16" in text and "preset demo" in text and "Recipe: " in text
    assert (
        "Intended use: trained on synthetic phantoms: for learning the tool, trying it on "
        "phantoms and as a starting point for fine-tuning; not for patients"
    ) in text
    assert main(["info", "phantom-demo", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] == "phantom-demo" and card["training"]["recipe"]["commit"] == "abc123"
    assert card["training"]["preset"] == "demo"
    assert card["intended_use"] == bundled.PHANTOM_USE


def test_info_shows_init_provenance_and_an_uncalibrated_model(tiny_model_file, tmp_path, capsys):
    path = tiny_model_file(tmp_path / "m.pt", step=2)
    record = read_checkpoint(path)
    record["init"] = {"path": "/runs/base/model.pt", "sha256": "f" * 64, "step": 100}
    save_checkpoint(record, path)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Started from: /runs/base/model.pt (100 steps, sha256 ffffffffffff)" in text
    assert "Calibration: none" in text and "Training domain: not recorded" in text


def test_info_refuses_unsafe_or_missing_files(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err


# ---------------------------------------------------------------- fine-tuning


@pytest.fixture
def healthy_folder(tmp_path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(2):
        brain_scan(folder / f"healthy_{i}.nii.gz", seed=i)
    return folder


def test_fine_tuning_starts_from_fp16_weights_as_float32(packed_file, healthy_folder, tmp_path):
    from madgan_core.model.train import init_config, prepare_training
    from madgan_core.scans.manifest import manifest_from_folder

    cfg = init_config(packed_file)
    scans = manifest_from_folder(healthy_folder)
    trainer = prepare_training(cfg, scans, tmp_path / "run", init=packed_file)
    packed = read_checkpoint(packed_file)
    for network, name in ((trainer.generator, "generator"), (trainer.critic, "critic")):
        state = network.state_dict()
        for key, value in packed[name].items():
            if value.is_floating_point():
                assert state[key].dtype == torch.float32, key
                assert torch.equal(state[key], value.float()), key


def test_train_init_from_a_bundled_name(installed, healthy_folder, tmp_path, monkeypatch):
    from madgan_core.cohort import training

    monkeypatch.setattr(training, "calibrate_trained", lambda *a, **k: None)
    out = tmp_path / "run"
    argv = ["train", "--manifest", str(healthy_folder), "--out", str(out)]
    argv += ["--init", "phantom-demo", "--steps", "1", "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    record = read_checkpoint(out / "model.pt")
    assert record["init"]["path"] == str(installed.resolve()) and record["init"]["step"] == 7
    floats = [v for v in record["generator"].values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 for v in floats)
    model = load_model(out / "model.pt", "cpu")
    assert all(torch.isfinite(p).all() for p in model.generator.parameters())


def test_train_init_bundled_name_not_installed(not_installed, tmp_path, capsys):
    argv = ["train", "--manifest", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--init", "phantom-demo", "--no-progress"]) == 2
    assert "is not in this installation" in capsys.readouterr().err
