"""The Snakemake catalog's conventions: `snakemake --lint` and `snakefmt --check` stay clean."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, snakemake

# the pinned .venv is the environment (torch's CPU wheel and norse --no-deps have no conda form)
ACCEPTED_LINTS = {"Specify a conda environment or container for each rule."}


def test_lint_finds_nothing_but_the_per_rule_conda_environment():
    proc = snakemake(REPO, "--lint", check=False)
    text = proc.stdout + proc.stderr
    findings = set(re.findall(r"^\s+\* (.+?):?$", text, flags=re.M))
    assert re.search(r"^Lints for rule \w+|Congratulations", text, flags=re.M), text[-2000:]  # it ran
    assert findings - ACCEPTED_LINTS == set(), text[-4000:]


def test_rule_files_are_snakefmt_formatted():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    assert snakefmt.exists() or shutil.which("snakefmt"), "snakefmt is pinned in requirements.txt"
    files = [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk"))]
    proc = subprocess.run([str(snakefmt if snakefmt.exists() else "snakefmt"), "--check", *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"run `snakefmt Snakefile workflow/`:\n{proc.stdout}{proc.stderr}"
