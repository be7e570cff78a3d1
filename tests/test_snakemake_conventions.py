"""The Snakemake catalog's conventions: `snakemake --lint` and `snakefmt --check` stay clean, and
the SLURM profile gives every rule that holds the whole machine an allocation of its own."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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


def test_every_rule_holding_the_whole_machine_has_its_own_slurm_allocation():
    """A rule that declares `threads: 256` (locally: every core, nothing beside it) would ask
    SLURM for 256 CPUs and wait forever: the profile must give it an allocation of its own."""
    rules = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", path.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            if re.search(r"^\s+threads:\s*256\b", block, flags=re.M):
                rules[name] = path.name
    assert {"bench", "step_time"} <= set(rules)  # the check sees the rules it is about
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    for name, where in rules.items():
        resources = profile["set-resources"].get(name, {})
        assert "cpus_per_task" in resources, f"rule {name} ({where}) has no cpus_per_task in the SLURM profile"
