"""The slab loader: scans read ahead in worker threads, and preprocessed slabs cached on disk."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from madgan_core.errors import ScanError
from madgan_core.model import checkpoint as ckpt
from madgan_core.prep.loader import SlabCache, SlabLoader
from madgan_core.scans.files import load_scan
from madgan_core.scoring.scorer import score_scan
from tests.madgan_core.test_bad_inputs import brain_scan


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    return [brain_scan(folder / f"s{i}.nii.gz", seed=i) for i in range(3)]


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_model_file):
    return ckpt.load_model(tiny_model_file(tmp_path_factory.mktemp("m") / "model.pt"), "cpu")


def assert_same_slab(a, b) -> None:
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, tuple) and x and isinstance(x[0], np.ndarray):
            for u, v in zip(x, y, strict=True):
                np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_array_equal(x, y, err_msg=field.name)


def test_a_cache_hit_gives_the_slab_and_scores_of_preprocessing(model, scans, tmp_path):
    loader = SlabLoader(prefetch=1, cache_dir=tmp_path / "cache")
    cfg = model.config.preprocess
    first = list(loader.load(scans, cfg))
    again = list(loader.load(scans, cfg))
    assert [p.cached for p in first] == [False] * 3 and [p.cached for p in again] == [True] * 3
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 3
    for path, hit in zip(scans, again, strict=True):
        assert hit.path == path and hit.name == path.name.removesuffix(".nii.gz")
        assert hit.scan is None  # a hit does not read the scan unless asked to
        plain = score_scan(model, load_scan(path), maps=True, precision="fp32")
        cached = score_scan(model, hit, slab=hit.slab, maps=True, precision="fp32")
        assert cached.scores == plain.scores and cached.name == plain.name
        np.testing.assert_array_equal(cached.heatmap, plain.heatmap)
    assert_same_slab(again[0].slab, first[0].slab)


def test_other_preprocessing_or_other_content_misses(model, scans, tmp_path):
    cache = SlabCache(tmp_path)
    cfg = model.config.preprocess
    key = cache.key(scans[0], cfg)
    assert cache.key(scans[0], cfg) == key
    assert cache.key(scans[0], dataclasses.replace(cfg, clip_percentiles=(1.0, 99.0))) != key
    changed = brain_scan(tmp_path / "changed.nii.gz", seed=7)
    assert cache.key(changed, cfg) != cache.key(scans[0], cfg)
    loader = SlabLoader(prefetch=0, cache_dir=tmp_path)
    list(loader.load(scans[:1], cfg))
    other = dataclasses.replace(cfg, clip_percentiles=(1.0, 99.0))
    assert not next(loader.load(scans[:1], other)).cached


def test_an_unreadable_cache_entry_is_preprocessed_again(model, scans, tmp_path, caplog):
    cfg = model.config.preprocess
    cache = SlabCache(tmp_path)
    loader = SlabLoader(prefetch=0, cache_dir=tmp_path)
    expected = next(loader.load(scans[:1], cfg)).slab
    cache.path(cache.key(scans[0], cfg)).write_bytes(b"PK\x03\x04 not a zip")
    with caplog.at_level(logging.WARNING):
        item = next(loader.load(scans[:1], cfg))
    assert not item.cached and "unreadable cached slab" in caplog.text
    assert_same_slab(item.slab, expected)
    assert next(loader.load(scans[:1], cfg)).cached  # written again, whole


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_scans_come_in_order_and_a_bad_one_raises_when_reached(model, scans, tmp_path, prefetch):
    missing = tmp_path / "missing.nii.gz"
    items = SlabLoader(prefetch=prefetch).load(
        [scans[0], scans[1], missing, scans[2]], model.config.preprocess, keep_scan=True
    )
    assert next(items).path == scans[0]
    second = next(items)
    assert second.path == scans[1] and second.scan is not None and second.seconds > 0
    with pytest.raises(ScanError, match="file not found"):
        next(items)
