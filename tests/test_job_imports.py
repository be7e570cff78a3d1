"""Jobs that need no torch do not import it: every job pays its imports at start-up, and torch
with Norse is most of that. What a job imports is read from its script's import statements."""

import ast
import subprocess
import sys

from fwdsnn.registry import FAMILIES
from conftest import REPO

SCRIPTS = REPO / "workflow" / "scripts"
NEED_TORCH = {"train.py", "hardware.py", "hardware_finetune.py", "gradient_quality.py", "bench.py", "step_time.py"}
HEAVY = ("torch", "norse", "nir")


def script_imports(path) -> list[str]:
    """The script's import statements, as source lines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def imported_heavy(statements: list[str]) -> list[str]:
    """Which of HEAVY are in sys.modules after running the statements in a fresh interpreter."""
    code = "\n".join([*statements, "import sys", f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_jobs_that_need_no_torch_do_not_import_it():
    light = sorted(path for path in SCRIPTS.glob("*.py") if path.name not in NEED_TORCH)
    assert {"tables.py", "metrics.py", "bit_sweep.py", "reference.py", "figure_energy.py"} <= {p.name for p in light}
    statements = [line for path in light for line in script_imports(path)]
    # the reference job imports its family's solver module when it runs
    statements += [f"import {module}" for module in FAMILIES.values()]
    assert imported_heavy(statements) == []


def test_the_check_sees_torch_where_a_job_needs_it():
    assert imported_heavy(script_imports(SCRIPTS / "hardware.py")) == list(HEAVY)
