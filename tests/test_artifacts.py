"""The run path and its parser agree, and anything else is refused by name."""

import pytest

from fwdsnn.artifacts import RUN_DIR, Run, parse_run


def test_parse_run_inverts_run_dir():
    run = Run("heat", "seponet", "rfg-layer", 12)
    assert parse_run(RUN_DIR.format(**run._asdict())) == run


@pytest.mark.parametrize("path", ["heat/seponet/rfg/12", "heat/seponet/s1", "heat/seponet/rfg/sx",
                                  "a/heat/seponet/rfg/s1"])
def test_parse_run_refuses_other_paths(path):
    with pytest.raises(ValueError, match=f"'{path}' is not a run path"):
        parse_run(path)
