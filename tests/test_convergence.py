"""The convergence table from synthetic histories whose test error falls as 1/step: the
improvement of the last fifth is known exactly, 1 - (last evaluation by 4/5 of the steps) / steps."""

import numpy as np
import pytest

from fwdsnn.tables import CONVERGED_IMPROVEMENT, convergence_table, convergence_text
from test_compute_matched import history


def histories():
    runs = {f"heat/seponet/bp/s{seed}": history("bp", seed) for seed in (0, 1)}
    runs["heat/seponet/bp/s2"] = history("bp", 2, steps=30, status="diverged")
    runs.update({f"heat/seponet/rfg-layer/s{seed}": history("rfg-layer", seed) for seed in (0, 1, 2)})
    flat = history("wp-layer", 0)
    flat["test_rel_l2_mean"][:] = 0.5  # no progress at all: converged
    runs["heat/seponet/wp-layer/s0"] = flat
    return runs


@pytest.fixture(scope="module")
def table():
    runs = histories()
    return convergence_table(list(runs), runs)


# (.sel({"method": ...}) throughout: method= is a keyword of .sel)


def test_the_last_fifth_improvement_is_read_at_the_evaluations_that_bound_it(table):
    cell = table.sel(target="heat", model="seponet")
    # bp: 100 steps, evaluation at 80 -> 1 - 80/100; rfg-layer: 80 steps, by 64 the last is 60
    np.testing.assert_allclose(cell["last_fifth_improvement"].sel({"method": "bp", "seed": [0, 1]}), [0.2, 0.2])
    np.testing.assert_allclose(cell["last_fifth_improvement"].sel({"method": "rfg-layer"}), [0.25] * 3)
    np.testing.assert_allclose(cell["rel_l2_at_four_fifths"].sel({"method": "bp", "seed": 1}), 2 / 80)
    np.testing.assert_allclose(cell["rel_l2_final"].sel({"method": "bp", "seed": 1}), 2 / 100)
    assert np.isnan(float(cell["last_fifth_improvement"].sel({"method": "bp", "seed": 2})))  # diverged
    assert int(cell["n_diverged"].sel({"method": "bp"})) == 1


def test_converged_only_where_the_median_improvement_is_under_the_threshold(table):
    converged = table["converged"].sel(target="heat", model="seponet")
    assert CONVERGED_IMPROVEMENT < 0.2
    assert float(converged.sel({"method": "bp"})) == 0.0
    assert float(converged.sel({"method": "rfg-layer"})) == 0.0
    assert float(converged.sel({"method": "wp-layer"})) == 1.0


def test_the_text_says_yes_and_no_and_counts_the_diverged_seed(table):
    csv, markdown = convergence_text(table)
    rows = {line.split(" | ")[2]: line for line in markdown.splitlines()[2:]}
    assert "| no |" in rows["bp"] and "diverged (1/3)" in rows["bp"] and "20.0%" in rows["bp"]
    assert "| yes |" in rows["wp-layer"] and "0.0%" in rows["wp-layer"]
    assert csv.splitlines()[0].startswith("target,model,method,rel_l2_at_four_fifths_median")
