"""flake.nix and flake.lock: the lock pins nixpkgs to the nixos-26.05 revision recorded for it, in the
lock format Nix 2.x writes, and flake.nix asks for that branch; flake.nix parses, and evaluated
against a stand-in for nixpkgs (no network, no store) it exposes devShells.default with the
pipeline's Python packages, apps.reproduce running Snakemake, and a check running pytest. The Nix
tests are skipped where Nix is not installed (Debian: apt-get install nix-bin)."""

import json
import re
import shutil
import subprocess

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


SYSTEMS = ["x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin"]

STAND_IN = """
let
  flake = import FLAKE;
  ps = builtins.listToAttrs (map (n: { name = n; value = n; })
         [ "torch" "numpy" "pandas" "matplotlib" "pillow" "pyyaml" "tabulate" "jinja2" "pytest" ])
       // { toPythonModule = m: m; };
  pkgs = {
    python3.withPackages = f: { outPath = "/nix/store/python-env"; packages = f ps; };
    snakemake = "snakemake";
    gnumake = "gnumake";
    # the store path names the tools beside the Python (runtimeInputs after the first), to be read back
    writeShellApplication = args: args // {
      outPath = "/nix/store/${args.name}" + builtins.concatStringsSep "" (map (i: "-with-" + i) (builtins.tail args.runtimeInputs));
    };
    mkShell = args: args;
    runCommandCC = name: env: script: { inherit name script; };
    stdenv.cc = "c-compiler";
  };
  systems = SYSTEMS;
  nixpkgs = {
    lib.genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    legacyPackages = builtins.listToAttrs (map (n: { name = n; value = pkgs; }) systems);
  };
  out = flake.outputs { self = "/nix/store/source"; inherit nixpkgs; };
in builtins.mapAttrs (system: _: {
  shell_packages = (builtins.head out.devShells.${system}.default.packages).packages;
  shell_tools = builtins.tail out.devShells.${system}.default.packages;
  shell_hook = out.devShells.${system}.default.shellHook;
  reproduce = out.apps.${system}.reproduce;
  default_app = out.apps.${system}.default.program;
  check = out.checks.${system}.pytest.script;
}) out.devShells
"""


@needs_nix
def test_flake_parses():
    subprocess.run([NIX_INSTANTIATE, "--parse", str(REPO / "flake.nix")], check=True, capture_output=True)


@needs_nix
def test_flake_outputs_against_a_stand_in_nixpkgs(tmp_path):
    expression = tmp_path / "evaluate.nix"
    expression.write_text(
        STAND_IN.replace("FLAKE", str(REPO / "flake.nix")).replace(
            "SYSTEMS", "[ " + " ".join(f'"{s}"' for s in SYSTEMS) + " ]"
        )
    )
    result = subprocess.run(
        [NIX_INSTANTIATE, "--eval", "--strict", "--json", str(expression)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert sorted(outputs) == sorted(SYSTEMS)
    for output in outputs.values():
        assert {"torch", "numpy", "pandas", "matplotlib", "pytest", "snakemake"} <= set(output["shell_packages"])
        assert 'PYTHONPATH="$PWD/src' in output["shell_hook"]
        assert output["reproduce"]["type"] == "app"
        assert output["reproduce"]["program"] == output["default_app"]
        assert output["reproduce"]["program"].endswith("/bin/truncback-reproduce")
        assert "python -m pytest" in output["check"]
        # torch.compile's CPU kernels need a C++ compiler: in the dev shell, the app and the checks (runCommandCC)
        assert "c-compiler" in output["shell_tools"] and "-with-c-compiler/" in output["reproduce"]["program"]
        subprocess.run(["bash", "-n"], input=output["check"], text=True, check=True)
