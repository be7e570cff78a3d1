"""Code fingerprints follow the import closure of a stage's modules."""

import re
import shutil
import sys

import pytest

from fwdsnn.config import load_schema
from fwdsnn.fingerprint import code_fingerprint, module_closure
from fwdsnn.grad import Estimator
from fwdsnn.registry import ESTIMATOR_MEMORY, ESTIMATORS, estimator_class, estimator_module, training_code_fingerprint
from conftest import REPO, register_toy_entries


def names(*modules):
    return {p.relative_to(p.parents[1]).as_posix() for p in module_closure(*modules)}


def test_closure_follows_fwdsnn_imports_only():
    closure = names("fwdsnn.pdes.antiderivative")
    assert {"pdes/antiderivative.py", "pdes/grf.py"} <= closure
    assert "pdes/poisson1d.py" not in closure and "pdes/burgers1d.py" not in closure


def test_stage_closure_does_not_pull_in_every_family():
    closure = names("fwdsnn.reference")
    assert {"fwdsnn/io.py", "fwdsnn/reference.py"} <= closure
    assert not any(name.endswith(("poisson1d.py", "heat1d.py")) for name in closure)
    assert "fwdsnn/registry.py" not in closure  # registering a family reruns no reference job


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
    assert not {"grad/backprop.py", "grad/forward.py", "grad/perturbation.py", "fwdsnn/registry.py"} & names("fwdsnn.train")
    forward = names("fwdsnn.train", estimator_module("forward"))
    assert {"grad/forward.py", "grad/tangents.py", "fwdsnn/train.py"} <= forward
    assert "grad/perturbation.py" not in forward


def test_estimator_registry_matches_the_schema_and_the_code():
    schema = load_schema()
    enum = schema["$defs"]["method"]["properties"]["estimator"]["enum"]
    assert sorted(enum) == sorted(ESTIMATORS) == sorted(ESTIMATOR_MEMORY)
    assert all(set(traits) == {"autograd", "rows", "per_layer", "example_sums", "traces"}
               for traits in ESTIMATOR_MEMORY.values())
    for name in ESTIMATORS:
        cls = estimator_class(name)
        assert issubclass(cls, Estimator) and cls.__module__ == estimator_module(name), name
        # the training stage keys its checkpoints by the fingerprint the workflow reruns on
        assert code_fingerprint("fwdsnn.train", cls.__module__) == training_code_fingerprint(name)
    with pytest.raises(ValueError, match="unknown estimator 'adjoint'"):
        estimator_module("adjoint")


def job_fingerprints() -> dict[str, str]:
    """Every job's code fingerprint as the workflow computes it: the modules each rule names,
    the reference stage with each family's module, training and fine-tuning with each
    estimator's. Imports the registry afresh: the one on sys.path now."""
    from fwdsnn.registry import ESTIMATORS, FAMILIES, estimator_module, training_code_fingerprint
    rules = "\n".join(path.read_text() for path in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    calls = [re.findall(r'"([\w.]+)"', args) for args in re.findall(r"code_fingerprint\(([^)]*)\)", rules)]
    jobs = {",".join(modules): code_fingerprint(*modules) for modules in calls if modules}
    jobs.update({f"reference/{family}": code_fingerprint("fwdsnn.reference", module)
                 for family, module in FAMILIES.items()})
    jobs.update({f"train/{name}": training_code_fingerprint(name) for name in ESTIMATORS})
    jobs.update({f"finetune/{name}": code_fingerprint("fwdsnn.finetune", estimator_module(name))
                 for name in ESTIMATORS})
    return jobs


def forget_fwdsnn() -> dict:
    """Drop fwdsnn from sys.modules (so the next import reads sys.path again); what was there."""
    return {name: sys.modules.pop(name) for name in list(sys.modules)
            if name == "fwdsnn" or name.startswith("fwdsnn.")}


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package, imported instead of this one for the test."""
    shutil.copytree(REPO / "fwdsnn", tmp_path / "fwdsnn", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = forget_fwdsnn()
    yield tmp_path / "fwdsnn"
    forget_fwdsnn()
    sys.modules.update(saved)


def test_registering_a_family_an_estimator_or_a_model_kind_reruns_no_job(package_copy):
    before = job_fingerprints()
    assert {"fwdsnn.tables", "fwdsnn.hardware.stage", "reference/heat1d", "train/forward"} <= set(before)
    register_toy_entries(package_copy)
    forget_fwdsnn()
    after = job_fingerprints()
    assert {"reference/toy", "train/toy"} <= set(after)  # the copy was read, the entries count
    assert {job: after[job] for job in before} == before
