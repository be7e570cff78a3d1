"""Weight averaging (train.ema): the warmed-up EMA of the iterates is what a run evaluates and
writes, and the optimiser's steps are those of the same run without it."""

import numpy as np
import pytest
import torch

from fwdsnn import io
from fwdsnn.averaging import WeightAverage
from fwdsnn.config import ConfigError, validate_config
from test_train import SETTINGS, train


def test_the_average_is_the_warmed_up_ema_of_the_iterates():
    """Against the closed form: a_T = prod_t keep_t a_0 + sum_t (1 - keep_t) prod_{s>t} keep_s p_t."""
    layer = torch.nn.Linear(3, 2)
    rng = np.random.default_rng(0)
    start = {name: p.detach().numpy().astype(np.float64).copy() for name, p in layer.named_parameters()}
    average = WeightAverage(layer, decay=0.8)
    iterates = []
    for step in range(25):
        values = {name: rng.normal(size=p.shape) for name, p in layer.named_parameters()}
        with torch.no_grad():
            for name, p in layer.named_parameters():
                p.copy_(torch.as_tensor(values[name]))
        average.update(step)
        iterates.append(values)
    keep = np.minimum(0.8, (1 + np.arange(25)) / (10 + np.arange(25)))
    for name in start:
        expected = np.prod(keep) * start[name]
        for t, values in enumerate(iterates):
            expected = expected + (1 - keep[t]) * np.prod(keep[t + 1:]) * values[name]
        np.testing.assert_allclose(average.average[name].numpy(), expected, rtol=1e-5, atol=1e-6)
    last = {name: p.detach().clone() for name, p in layer.named_parameters()}
    with average.applied():
        assert torch.equal(layer.weight, average.average["weight"])
    assert all(torch.equal(p, last[name]) for name, p in layer.named_parameters())


def test_averaging_changes_what_is_written_not_the_steps(parabola, tmp_path):
    _, plain = train(parabola, tmp_path / "plain")
    _, averaged = train(parabola, tmp_path / "averaged", ema=0.9)
    np.testing.assert_array_equal(plain["history"]["loss"], averaged["history"]["loss"])
    assert not io.data_variables_equal(plain["model"], averaged["model"])
    # the last evaluation of the history is of the written weights
    assert float(averaged["history"]["test_rel_l2_mean"][-1]) == \
        pytest.approx(float(averaged["prediction"]["rel_l2"].mean()), rel=1e-12)
    assert float(plain["history"]["test_rel_l2_mean"][-1]) != \
        pytest.approx(float(averaged["history"]["test_rel_l2_mean"][-1]), rel=1e-6)


@pytest.mark.parametrize("ema", [1.0, -0.1])
def test_a_decay_outside_zero_to_one_is_refused_naming_the_key(ema):
    with pytest.raises(ConfigError, match=r"train\.ema"):
        validate_config({**SETTINGS, "train": {**SETTINGS["train"], "ema": ema}})
