"""The single-slice autoencoder baseline: each distinct target slice reconstructed once."""

import numpy as np
import torch

from madgan_core.cohort.baselines import SliceAutoencoder, autoencoder_predictor
from madgan_core.config import ModelConfig
from madgan_core.prep.windows import iter_window_batches


def _model() -> SliceAutoencoder:
    torch.manual_seed(0)
    return SliceAutoencoder(4).eval().to(memory_format=torch.channels_last)


def test_consecutive_windows_match_slice_by_slice_reconstruction():
    model = _model()
    slices = np.random.default_rng(0).random((14, 32, 48), dtype=np.float32)
    predict = autoencoder_predictor(model)
    calls = []
    model.register_forward_hook(lambda _m, x, _y: calls.append(x[0].shape[0]))
    for _start, _inputs, targets in iter_window_batches(slices, ModelConfig(), 4):
        t = torch.from_numpy(targets.copy())
        with torch.no_grad():
            got = predict(None, t)
            b, c, h, w = t.shape
            flat = t.reshape(b * c, 1, h, w).contiguous(memory_format=torch.channels_last)
            expected = model(flat).reshape(b, c, h, w)
        assert got.shape == t.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # 9 windows of 3 targets in batches of 4, 4, 1: the predictor ran 6, 6 and 3 slices
    # (the reference, 12, 12 and 3, in between)
    assert calls == [6, 12, 6, 12, 3, 3]


def test_windows_that_do_not_overlap_are_reconstructed_as_given():
    model = _model()
    targets = torch.rand(3, 3, 32, 48)
    with torch.no_grad():
        got = autoencoder_predictor(model)(None, targets)
        flat = targets.reshape(9, 1, 32, 48).contiguous(memory_format=torch.channels_last)
        expected = model(flat).reshape(3, 3, 32, 48)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
