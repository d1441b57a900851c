"""flake.nix and flake.lock: the lock pins nixpkgs to the nixos-26.05 revision recorded for it, in the
lock format Nix 2.x writes, and flake.nix asks for that branch. Evaluated against a stand-in for nixpkgs
(no network, no store), the flake offers the Linux pair of systems only; its dev shell and check carry
everything the test suite runs (each executable the suite calls is in the check's inputs, in the
standard environment, or its tests skip with the reason); its apps describe themselves; and its
Snakemake is requirements.lock's wheel (version and sha256 read from the lock, which the venv installs
in pip's hash-checking mode), not nixpkgs' source build with its report assets patched to "err". In
this environment, whichever it is, Snakemake is the lock's version with its report assets intact. The
Nix tests are skipped where Nix is not installed (Debian: apt-get install nix-bin)."""

import ast
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from workflow_copy import REPO

NIX_INSTANTIATE = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(NIX_INSTANTIATE is None, reason="nix-instantiate is not installed")
PINNED = {
    "owner": "NixOS",
    "repo": "nixpkgs",
    "type": "github",
    "rev": "b51242d7d43689db2f3be91bd05d5b24fbb469c4",
    "narHash": "sha256-K5sT4jTpGs15ADhviMKNBH38REpPf5Q6mM1+N6cArVE=",
    "lastModified": 1780203844,
}


def test_the_lock_pins_nixpkgs_and_flake_nix_asks_for_the_same_branch():
    lock = json.loads((REPO / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    assert sorted(lock["nodes"]) == ["nixpkgs", "root"]
    assert lock["nodes"]["root"] == {"inputs": {"nixpkgs": "nixpkgs"}}
    node = lock["nodes"]["nixpkgs"]
    assert node["locked"] == PINNED
    assert node["original"] == {"owner": "NixOS", "repo": "nixpkgs", "type": "github", "ref": "nixos-26.05"}
    url = re.search(r'inputs\.nixpkgs\.url\s*=\s*"([^"]+)"', (REPO / "flake.nix").read_text()).group(1)
    assert url == f"github:{node['original']['owner']}/{node['original']['repo']}/{node['original']['ref']}"


# --- requirements.lock: the pins the venv installs, a few with the hash the flake fetches by ---

PIN = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)(?: --hash=sha256:(?P<sha256>[0-9a-f]{64}))?")
# The wheels flake.nix takes from PyPI instead of nixpkgs (Snakemake and what 9.27.1 needs newer)
FROM_THE_LOCK = ("snakemake", "sqlmodel", "tenacity", "snakemake-interface-storage-plugins")


def lock_pins() -> dict[str, dict]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            match = PIN.fullmatch(line)
            assert match, f"requirements.lock: {line!r} is neither a comment nor name==version [--hash=sha256:HEX]"
            pins[match["name"]] = {"version": match["version"], "sha256": match["sha256"]}
    return pins


def test_the_lock_hashes_exactly_the_wheels_the_flake_shares_and_the_makefile_checks_them():
    pins = lock_pins()
    assert sorted(name for name, pin in pins.items() if pin["sha256"]) == sorted(FROM_THE_LOCK)
    assert f"snakemake=={pins['snakemake']['version']}" in (REPO / "requirements.txt").read_text().splitlines()
    install = re.search(r"^\$\(VENV\)/\.installed:.*?\n\n", (REPO / "Makefile").read_text(), re.S | re.M).group(0)
    steps = [line.strip() for line in install.splitlines()[1:] if line.strip()]
    hashed = steps.index("grep -E '^[^#].* --hash=sha256:' requirements.lock > $(VENV)/hashed.txt")
    assert steps[hashed + 1] == "$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r $(VENV)/hashed.txt"
    assert steps[hashed + 2] == "sed 's/ --hash=[^ ]*//' requirements.lock > $(VENV)/constraints.txt"
    assert steps[hashed + 3] == "$(BIN)/python -m pip install --quiet -r requirements.txt -c $(VENV)/constraints.txt"
    assert not [step for step in steps if "-c requirements.lock" in step]  # hashes there: all-or-nothing


def test_snakemake_here_is_the_lock_s_with_its_report_assets():
    """The venv's and the flake's check alike: Snakemake 9.27.1, and every report asset (JavaScript, CSS,
    licences) the bytes its spec's sha256 names, where nixpkgs' own package would hold "err"."""
    assert importlib.metadata.version("snakemake") == lock_pins()["snakemake"]["version"]
    from snakemake.assets import Assets

    checked = {path: asset.sha256 for path, asset in Assets.spec.items() if asset.sha256}
    assert len(checked) > 20 and any(path.endswith(".js") for path in checked)
    wrong = [
        path
        for path, sha256 in checked.items()
        if not (Assets.base_path() / path).is_file()
        or hashlib.sha256((Assets.base_path() / path).read_bytes()).hexdigest() != sha256
    ]
    assert not wrong, f"report assets missing or not as Snakemake specifies them: {wrong[:5]}"


# --- every executable the suite runs, and where `nix flake check` gets it ---

STDENV = "stdenv"  # in every Nix build's PATH: bash, coreutils, tar, ...
# executable (or "-m module") -> (where the check gets it, what)
WHERE = {
    "git": ("check inputs", "git"),
    "snakemake": ("python", "snakemake"),
    "-m build": ("python", "build"),
    "-m truncback": ("source", "PYTHONPATH=src"),
    "-m venv": ("python", "the standard library"),
    "-m pip": ("python", "ensurepip, in the venv python -m venv makes"),
    "bash": (STDENV, "bash"),
    "sleep": (STDENV, "coreutils"),
    "tar": (STDENV, "gnutar"),
    "g++": ("runCommandCC", "stdenv.cc"),
    "c++": ("runCommandCC", "stdenv.cc"),
    "clang++": ("runCommandCC", "stdenv.cc"),  # the fast path takes the first of g++, c++, clang++
    "apt-get": ("skipped", "tests/test_slurm.py", "needs apt-get"),
    "ps": ("skipped", "tests/test_slurm.py", "needs root"),  # only once Slurm is up, which needs both
    "lint-imports": ("skipped", "tests/test_layers.py", "import-linter is not installed"),
    "nix-instantiate": ("skipped", "tests/test_nix.py", "nix-instantiate is not installed"),
}
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def executables_the_suite_runs() -> dict[str, set[str]]:
    """From the source of tests/ and the package: the literal first word of each subprocess call, the
    module of each `[python, "-m", module]`, and each name given to shutil.which."""
    found: dict[str, set[str]] = {}
    for path in sorted([*REPO.glob("tests/*.py"), *REPO.glob("src/truncback/**/*.py")]):
        where = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "map" and len(node.args) == 2:
                    which, names = node.args  # map(shutil.which, ("g++", ...))
                    if isinstance(which, ast.Attribute) and which.attr == "which" and isinstance(names, ast.Tuple):
                        for name in names.elts:
                            found.setdefault(name.value, set()).add(where)
                continue
            owner = getattr(node.func.value, "id", None)
            if owner == "shutil" and node.func.attr == "which" and isinstance(node.args[0], ast.Constant):
                found.setdefault(node.args[0].value, set()).add(where)
            if owner != "subprocess" or node.func.attr not in SUBPROCESS_CALLS or not node.args:
                continue
            if not isinstance(node.args[0], (ast.List, ast.Tuple)) or not node.args[0].elts:
                continue
            words = [element.value if isinstance(element, ast.Constant) else None for element in node.args[0].elts]
            if isinstance(words[0], str):
                found.setdefault(words[0], set()).add(where)
            if len(words) >= 3 and words[1] == "-m" and isinstance(words[2], str):
                found.setdefault(f"-m {words[2]}", set()).add(where)
    return found


def test_every_executable_the_suite_runs_is_in_the_nix_check_or_its_tests_skip():
    found = executables_the_suite_runs()
    assert {"git", "snakemake", "-m build", "tar"} <= set(found)  # the scan sees the calls it must
    unplaced = {name: sorted(files) for name, files in found.items() if name not in WHERE}
    assert not unplaced, f"executables the suite runs that WHERE does not place in the Nix check: {unplaced}"
    assert not set(WHERE) - set(found), f"WHERE places executables the suite no longer runs: {set(WHERE) - set(found)}"
    for name, (where, *what) in WHERE.items():
        if where == "skipped":
            path, reason = what
            assert path in found[name], f"{name}: run outside {path}, which WHERE says skips without it"
            assert reason in (REPO / path).read_text(), f"{path} does not skip with {reason!r} ({name})"


def test_without_git_or_build_their_tests_skip_and_say_why(tmp_path):
    """What a bare environment gets (no git on PATH, no build module): a skip naming the missing tool."""
    hide_build = "import sys, pytest; sys.modules['build'] = None; sys.exit(pytest.main(sys.argv[1:]))"
    tests = [
        "tests/test_pipeline_scratch.py::test_a_scratch_export_is_kept_for_a_resume_of_the_same_commit_only",
        "tests/test_pipeline_scratch.py::test_expected_outputs_record_each_command_s_code_version_and_give_the_jobs_the_commit",
        "tests/test_wheel.py::test_the_wheel_installs_into_a_fresh_venv_and_runs_an_example",
    ]
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty folder: no git
    result = subprocess.run(
        [sys.executable, "-c", hide_build, "-p", "no:cacheprovider", "-q", "-rs", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("git is not installed (scratch exports use git archive)") == 2, result.stdout
    assert "python -m build needs build, not installed" in result.stdout, result.stdout
    assert re.search(r"^3 skipped", result.stdout, re.M), result.stdout


# --- the flake, evaluated against a stand-in nixpkgs ---

SYSTEMS = ["x86_64-linux", "aarch64-linux"]
ALL_SYSTEMS = SYSTEMS + ["x86_64-darwin", "aarch64-darwin"]  # what the stand-in offers
# nixpkgs' Python package names the flake may use: each is a stand-in package at version "nixpkgs"
NIXPKGS_PYTHON = """
  torch numpy pandas matplotlib pillow pyyaml tabulate jinja2 pytest build setuptools
  conda-inject configargparse connection-pool docutils dpath gitpython humanfriendly immutables jsonschema
  nbformat packaging platformdirs psutil pulp pygments referencing requests smart-open
  snakemake-interface-common snakemake-interface-executor-plugins snakemake-interface-logger-plugins
  snakemake-interface-report-plugins snakemake-interface-scheduler-plugins snakemake-interface-storage-plugins
  sqlmodel tenacity throttler wrapt yte appdirs reretry
""".split()
# nixpkgs' own Snakemake as at the pin: a source build whose postPatch stores failed asset downloads as "err"
ASSETS_PATCH = (
    '''substituteInPlace src/snakemake/assets/__init__.py --replace-fail "raise err" "return bytes('err','ascii')"'''
)

STAND_IN = """
let
  flake = import FLAKE;
  # a Python package: its name and version in its store path, its attributes kept to be read back
  package = name: attrs: {
    outPath = "/nix/store/${name}-${attrs.version}";
    inherit name attrs;
    overridePythonAttrs = f: package name (attrs // f attrs);
  };
  nixpkgsPython = builtins.listToAttrs (map (n: { name = n; value = package n { version = "nixpkgs"; }; }) PYTHON)
    // { toPythonModule = m: m; };
  pkgs = {
    python3.override = { self, packageOverrides }:
      let final = nixpkgsPython // packageOverrides final nixpkgsPython;
      in { pkgs = final; withPackages = f: { outPath = "/nix/store/python-env"; packages = f final; }; };
    snakemake.override = { python3Packages }: package "snakemake" {
      version = "9.16.3";
      pyproject = true;
      src = { url = "https://github.com/snakemake/snakemake/archive/v9.16.3.tar.gz"; };
      postPatch = ''ASSETS_PATCH'';
      dependencies = [ python3Packages.appdirs python3Packages.reretry ];
      doCheck = true;
    };
    fetchurl = args: args;
    git = "git";
    gnumake = "gnumake";
    # the store path names the tools beside the Python (runtimeInputs after the first), to be read back
    writeShellApplication = args: args // {
      outPath = "/nix/store/${args.name}" + builtins.concatStringsSep "" (map (i: "-with-" + i) (builtins.tail args.runtimeInputs));
    };
    mkShell = args: args;
    # the only way the stand-in runs a command: with the C/C++ compiler (stdenv.cc), as runCommandCC does
    runCommandCC = name: env: script: { inherit name env script; };
    stdenv.cc = "c-compiler";
  };
  nixpkgs = {
    lib.genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    legacyPackages = builtins.listToAttrs (map (n: { name = n; value = pkgs; }) ALL_SYSTEMS);
  };
  out = flake.outputs { self = "/nix/store/source"; inherit nixpkgs; };
  names = map (p: p.name);
in builtins.mapAttrs (system: _:
  let
    shell = out.devShells.${system}.default;
    check = out.checks.${system}.pytest;
    checkPython = builtins.head check.env.nativeBuildInputs;
    snakemake = builtins.head (builtins.filter (p: p.name == "snakemake") checkPython.packages);
  in {
    systems = { devShells = builtins.attrNames out.devShells; apps = builtins.attrNames out.apps; checks = builtins.attrNames out.checks; };
    shell_python = names (builtins.head shell.packages).packages;
    shell_tools = builtins.tail shell.packages;
    shell_hook = shell.shellHook;
    apps = out.apps.${system};
    check_python = names checkPython.packages;
    check_tools = builtins.tail check.env.nativeBuildInputs;
    check = check.script;
    snakemake = snakemake.attrs;
  }) out.devShells
"""


def evaluate(tmp_path, flake=REPO / "flake.nix") -> subprocess.CompletedProcess:
    expression = tmp_path / "evaluate.nix"
    nix_list = lambda words: "[ " + " ".join(f'"{word}"' for word in words) + " ]"  # noqa: E731
    expression.write_text(
        STAND_IN.replace("FLAKE", str(flake))
        .replace("ALL_SYSTEMS", nix_list(ALL_SYSTEMS))
        .replace("PYTHON", nix_list(NIXPKGS_PYTHON))
        .replace("ASSETS_PATCH", ASSETS_PATCH)
    )
    return subprocess.run(
        [NIX_INSTANTIATE, "--eval", "--strict", "--json", str(expression)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    if NIX_INSTANTIATE is None:
        pytest.skip("nix-instantiate is not installed")
    result = evaluate(tmp_path_factory.mktemp("nix"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_nix
def test_flake_parses():
    subprocess.run([NIX_INSTANTIATE, "--parse", str(REPO / "flake.nix")], check=True, capture_output=True)


@needs_nix
def test_the_flake_offers_the_linux_pair_only(outputs):
    assert sorted(outputs) == sorted(SYSTEMS)
    for output in outputs.values():
        assert output["systems"] == {kind: sorted(SYSTEMS) for kind in ("devShells", "apps", "checks")}


@needs_nix
def test_the_dev_shell_and_the_check_carry_what_the_suite_runs(outputs):
    for output in outputs.values():
        for python in (output["shell_python"], output["check_python"]):
            assert {"torch", "numpy", "pandas", "matplotlib", "pytest", "snakemake"} <= set(python)
            assert {"build", "setuptools"} <= set(python)  # python -m build --no-isolation (test_wheel.py)
        for name, (where, *what) in WHERE.items():
            if where == "check inputs":
                assert what[0] in output["check_tools"] and what[0] in output["shell_tools"], name
            if where == "python" and what[0] in NIXPKGS_PYTHON + ["snakemake"]:
                assert what[0] in output["check_python"], name
        assert 'PYTHONPATH="$PWD/src' in output["shell_hook"] and 'PYTHONPATH="$PWD/src"' in output["check"]
        assert "python -m pytest" in output["check"]
        subprocess.run(["bash", "-n"], input=output["check"], text=True, check=True)
        # torch.compile's CPU kernels need a C++ compiler: in the dev shell and the app (the check is a runCommandCC)
        reproduce = output["apps"]["reproduce"]
        assert "c-compiler" in output["shell_tools"] and "-with-c-compiler/" in reproduce["program"]


@needs_nix
def test_the_apps_run_snakemake_and_describe_themselves(outputs):
    for output in outputs.values():
        reproduce, default = output["apps"]["reproduce"], output["apps"]["default"]
        assert reproduce == default and reproduce["type"] == "app"
        assert reproduce["program"].endswith("/bin/truncback-reproduce")
        assert "snakemake" in reproduce["meta"]["description"]


@needs_nix
def test_the_flake_s_snakemake_is_the_lock_s_wheel_not_nixpkgs_patched_source(outputs):
    pins = lock_pins()
    for output in outputs.values():
        snakemake = output["snakemake"]
        assert snakemake["version"] == pins["snakemake"]["version"] == "9.27.1"
        assert snakemake["src"]["sha256"] == pins["snakemake"]["sha256"]  # what pip checks in the venv
        assert snakemake["src"]["url"].startswith("https://files.pythonhosted.org/packages/")
        assert snakemake["src"]["url"].endswith("/snakemake-9.27.1-py3-none-any.whl")
        assert (snakemake["format"], snakemake["pyproject"], snakemake["doCheck"]) == ("wheel", None, False)
        assert "assets" not in snakemake["postPatch"] and snakemake["patches"] == []  # no "err" assets
        depends = {re.sub(r"^/nix/store/", "", path) for path in snakemake["dependencies"]}
        for name in FROM_THE_LOCK[1:]:  # what 9.27.1 needs newer than nixpkgs' Snakemake: the lock's wheels
            assert f"{name}-{pins[name]['version']}" in depends, depends
        assert {"pygments-nixpkgs", "platformdirs-nixpkgs", "dpath-nixpkgs"} <= depends  # the report's, the wheel's
        assert not {"appdirs-nixpkgs", "reretry-nixpkgs"} & depends  # nixpkgs' 9.16.3 list, replaced


@needs_nix
def test_the_flake_reads_snakemake_from_the_lock_and_stops_on_a_mismatch(tmp_path):
    """A lock whose Snakemake is another version than the flake's wheel address, or has no hash, fails the
    evaluation with a message naming the mismatch; the lock's hash is the one fetched."""
    lock = (REPO / "requirements.lock").read_text()
    cases = {
        "9.28.0": ("snakemake==9.27.1 ", "snakemake==9.28.0 ", "the wheel address of snakemake is not version 9.28.0"),
        "no-hash": (
            f" --hash=sha256:{lock_pins()['snakemake']['sha256']}",
            "",
            "snakemake==9.27.1 carries no --hash=sha256:",
        ),
    }
    for case, (old, new, message) in cases.items():
        folder = tmp_path / case
        folder.mkdir()
        assert old in lock
        (folder / "requirements.lock").write_text(lock.replace(old, new))
        shutil.copy2(REPO / "flake.nix", folder / "flake.nix")
        result = evaluate(folder, folder / "flake.nix")
        assert result.returncode != 0 and message in result.stderr, result.stderr
