"""Code fingerprints follow the import closure of a stage's modules."""

import importlib
import sys

import pytest

from fwdsnn.config import load_schema
from fwdsnn.estimators import ESTIMATORS, estimator_module
from fwdsnn.fingerprint import code_fingerprint, module_closure
from fwdsnn.grad import Estimator


def names(*modules):
    return {p.relative_to(p.parents[1]).as_posix() for p in module_closure(*modules)}


def test_closure_follows_fwdsnn_imports_only():
    closure = names("fwdsnn.pdes.antiderivative")
    assert {"pdes/antiderivative.py", "pdes/grf.py"} <= closure
    assert "pdes/poisson1d.py" not in closure and "pdes/burgers1d.py" not in closure


def test_stage_closure_does_not_pull_in_every_family():
    closure = names("fwdsnn.reference")
    assert {"fwdsnn/io.py", "fwdsnn/reference.py", "pdes/__init__.py"} <= closure
    assert not any(name.endswith(("poisson1d.py", "heat1d.py")) for name in closure)


def test_fingerprints_differ_between_families_and_are_stable():
    a = code_fingerprint("fwdsnn.reference", "fwdsnn.pdes.poisson1d")
    assert a == code_fingerprint("fwdsnn.pdes.poisson1d", "fwdsnn.reference")
    assert a != code_fingerprint("fwdsnn.reference", "fwdsnn.pdes.heat1d")


def test_prose_edits_keep_the_fingerprint_and_code_edits_change_it(tmp_path, monkeypatch):
    package = tmp_path / "fwdsnn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "stage.py"
    module.write_text('"""Doc."""\n\ndef f(x):\n    """Why."""\n    return x + 1  # note\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n == "fwdsnn" or n.startswith("fwdsnn.")]:
        monkeypatch.delitem(sys.modules, name)
    before = code_fingerprint("fwdsnn.stage")
    module.write_text('"""Another doc."""\n\n\ndef f(x):\n    """Because."""\n    return x + 1\n')
    assert code_fingerprint("fwdsnn.stage") == before
    module.write_text('"""Doc."""\n\ndef f(x):\n    return x + 2\n')
    assert code_fingerprint("fwdsnn.stage") != before


def test_a_training_run_hashes_its_own_estimator_only():
    assert not {"grad/backprop.py", "grad/forward.py", "grad/perturbation.py"} & names("fwdsnn.train")
    forward = names("fwdsnn.train", estimator_module("forward"))
    assert {"grad/forward.py", "grad/tangents.py", "fwdsnn/train.py"} <= forward
    assert "grad/perturbation.py" not in forward


def test_estimator_registry_matches_the_schema_and_the_code():
    schema = load_schema()
    enum = schema["$defs"]["method"]["properties"]["estimator"]["enum"]
    assert sorted(enum) == sorted(ESTIMATORS)
    for name, (module, cls) in ESTIMATORS.items():
        assert issubclass(getattr(importlib.import_module(module), cls), Estimator), name
    with pytest.raises(ValueError, match="unknown estimator 'adjoint'"):
        estimator_module("adjoint")
