"""Code fingerprints follow the import closure of a stage's modules."""

import sys

from fwdsnn.fingerprint import code_fingerprint, module_closure


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
