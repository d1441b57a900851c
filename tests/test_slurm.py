"""The cluster path, for real: a single-node Slurm (Debian's slurm-wlm and munge, started on localhost
by tests/slurm/single_node.sh) runs two smoke toy targets (Figs. 1 and 4) through
`snakemake --profile profiles/slurm`, with the profile's placeholders edited as a user edits them, and
the outputs are byte-identical to a local run; every daemon started is stopped by its PID. Skipped
where that cannot run (not root, no apt-get, the Slurm plugin not installed). The profile's resources
are checked without Slurm: every rule it routes exists and every job gets a runtime and memory."""

import importlib.util
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from workflow_copy import REPO, SNAKEMAKE, copy_workflow, snakemake

SCRIPT = REPO / "tests" / "slurm" / "single_node.sh"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
# Two toy figures: the reference and one trajectory job side by side as 2 Slurm jobs (each paying sbatch,
# a Snakemake start inside the job and the plugin's status polls), then Figs. 1 and 4 as local rules
TARGETS = [
    f"figures/smoke/{name}.{suffix}" for name in ("fig1_toy_bound", "fig4_toy_convergence") for suffix in ("pdf", "png")
]


def cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it installs and starts Slurm)"
    if shutil.which("apt-get") is None:
        return "needs apt-get (Debian's slurm-wlm and munge)"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install --no-deps -r requirements-slurm.txt)"
    if SNAKEMAKE is None:
        return "snakemake is not installed"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and "written by truncback" not in conf.read_text():
        return "this machine has a Slurm configuration of its own, which the test will not overwrite"
    return None


def alive(pid: int) -> bool:
    """Running and not a zombie (PID 1 here does not reap orphans)."""
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and "Z" not in state


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = cannot_run()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "WORK": str(work)}

    def step(name, timeout):
        return subprocess.run(["bash", str(SCRIPT), name], env=env, capture_output=True, text=True, timeout=timeout)

    def must(name, timeout):
        result = step(name, timeout)
        assert result.returncode == 0, f"single_node.sh {name} failed:\n{result.stdout}\n{result.stderr}"

    try:
        installed = step("install", 600)
    except subprocess.TimeoutExpired:
        pytest.skip("apt-get did not install slurm-wlm and munge within 10 minutes")
    if installed.returncode != 0:  # the package registry, not the code under test: say why and skip
        pytest.skip(f"apt-get could not install slurm-wlm and munge: {installed.stderr.strip()[-300:]}")
    try:
        must("up", 120)
        pids = [int(line.split()[1]) for line in (work / "daemons.pids").read_text().splitlines()]
        yield {"work": work, "pids": pids}
    finally:
        must("down", 120)
    assert not [pid for pid in pids if alive(pid)], "a daemon outlived `down`"
    assert not Path("/etc/slurm/slurm.conf").exists(), "`down` leaves the test's slurm.conf behind"


def user_profile(workdir):
    """The profile as a user edits it for this cluster: its partitions named, no account (there is no
    accounting here; the plugin submits without -A)."""
    text = (workdir / "profiles" / "slurm" / "config.yaml").read_text()
    text = text.replace("your-cpu-partition", "debug").replace("your-gpu-partition", "debug")
    text = "\n".join(line for line in text.splitlines() if "slurm_account" not in line) + "\n"
    (workdir / "profiles" / "slurm" / "config.yaml").write_text(text)


@pytest.mark.slow
def test_smoke_toy_targets_through_slurm_match_a_local_run(cluster, tmp_path):
    (tmp_path / "slurm").mkdir()
    (tmp_path / "local").mkdir()
    on_slurm, local = copy_workflow(tmp_path / "slurm"), copy_workflow(tmp_path / "local")
    user_profile(on_slurm)
    start = time.monotonic()
    result = snakemake(
        on_slurm,
        "--profile",
        "profiles/slurm",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
        "--config",
        "scale=smoke",
        "--",
        *TARGETS,
    )
    seconds = time.monotonic() - start
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr)
    print(f"Slurm run: {seconds:.0f} s, Slurm job ids {job_ids}")
    assert len(job_ids) == 2  # toy_reference, toy_trajectories (f); the figures are local rules
    snakemake(local, "--cores", "2", "--config", "scale=smoke", "--", *TARGETS)
    compared = TARGETS + [str(path.relative_to(local)) for path in sorted((local / "results/smoke/toy").iterdir())]
    for name in compared:
        assert (on_slurm / name).read_bytes() == (local / name).read_bytes(), name
    assert all(alive(pid) for pid in cluster["pids"])


def rules_of_the_workflow() -> set:
    """Every rule name, from Snakemake itself (the data rules are made in a loop)."""
    listed = subprocess.run([SNAKEMAKE, "--list-rules"], cwd=REPO, capture_output=True, text=True, check=True)
    return {line.strip() for line in listed.stdout.splitlines() if line.strip()}


SITE_KEYS = {"slurm_partition", "slurm_account", "slurm_extra", "cpus_per_task"}


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_the_profile_holds_only_site_specifics_and_routes_every_gpu_job_to_the_gpu_partition():
    """Memory, run time and GPU are the rules' (rules/*.smk); the profile only says where jobs go: every
    rule it routes exists, and every rule whose jobs ask for a GPU is routed to the GPU partition."""
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert set(defaults) <= SITE_KEYS and {"slurm_partition", "slurm_account"} <= set(defaults)
    assert all(set(resources) <= SITE_KEYS for resources in profile["set-resources"].values())
    rules = rules_of_the_workflow()
    unknown = sorted(set(profile["set-resources"]) - rules)
    assert not unknown, f"profiles/slurm/config.yaml routes rules that do not exist: {unknown}"
    planned = subprocess.run(
        [SNAKEMAKE, "-n", "--forceall", "--config", "scale=smoke"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    gpu_rules = set(
        re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: [^\n]*\bgpu=1\b", planned, flags=re.MULTILINE)
    )
    assert gpu_rules >= {"hypercleaning_run", "omniglot_run", "task_interaction_features"}
    for rule in gpu_rules:
        assert (
            profile["set-resources"].get(rule, {}).get("slurm_partition", defaults["slurm_partition"])
            != defaults["slurm_partition"]
        ), f"{rule}: a GPU job on the CPU partition"


def test_every_runtime_in_the_rules_carries_its_unit():
    """Snakemake 9.16.3 (nixpkgs) reads a bare runtime as seconds, 9.27.1 as minutes: "2h" reads alike."""
    for path in sorted((REPO / "rules").glob("*.smk")):
        for value in re.findall(r"runtime=([^,\n]+)", path.read_text()):
            assert re.fullmatch(r'"\d+[hm]"', value), f"{path.name}: runtime={value} should be a string with its unit"
