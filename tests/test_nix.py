"""flake.nix: it parses, and evaluated against a stand-in for nixpkgs (no network, no store) it exposes
devShells.default with the pipeline's Python packages, apps.reproduce running Snakemake, and a check
running pytest. Skipped where Nix is not installed (Debian: apt-get install nix-bin)."""

import json
import shutil
import subprocess

import pytest

from workflow_copy import REPO

NIX_INSTANTIATE = shutil.which("nix-instantiate")
pytestmark = pytest.mark.skipif(NIX_INSTANTIATE is None, reason="nix-instantiate is not installed")
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
    writeShellApplication = args: args // { outPath = "/nix/store/${args.name}"; };
    mkShell = args: args;
    runCommand = name: env: script: { inherit name script; };
  };
  systems = SYSTEMS;
  nixpkgs = {
    lib.genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    legacyPackages = builtins.listToAttrs (map (n: { name = n; value = pkgs; }) systems);
  };
  out = flake.outputs { self = "/nix/store/source"; inherit nixpkgs; };
in builtins.mapAttrs (system: _: {
  shell_packages = (builtins.head out.devShells.${system}.default.packages).packages;
  shell_hook = out.devShells.${system}.default.shellHook;
  reproduce = out.apps.${system}.reproduce;
  default_app = out.apps.${system}.default.program;
  check = out.checks.${system}.pytest.script;
}) out.devShells
"""


def test_flake_parses():
    subprocess.run([NIX_INSTANTIATE, "--parse", str(REPO / "flake.nix")], check=True, capture_output=True)


def test_flake_outputs_against_a_stand_in_nixpkgs(tmp_path):
    expression = tmp_path / "evaluate.nix"
    expression.write_text(STAND_IN.replace("FLAKE", str(REPO / "flake.nix"))
                          .replace("SYSTEMS", "[ " + " ".join(f'"{s}"' for s in SYSTEMS) + " ]"))
    result = subprocess.run([NIX_INSTANTIATE, "--eval", "--strict", "--json", str(expression)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert sorted(outputs) == sorted(SYSTEMS)
    for system, output in outputs.items():
        assert {"torch", "numpy", "pandas", "matplotlib", "pytest", "snakemake"} <= set(output["shell_packages"])
        assert 'PYTHONPATH="$PWD/src' in output["shell_hook"]
        assert output["reproduce"]["type"] == "app"
        assert output["reproduce"]["program"] == output["default_app"]
        assert output["reproduce"]["program"].endswith("/bin/truncback-reproduce")
        assert "python -m pytest" in output["check"]
        subprocess.run(["bash", "-n"], input=output["check"], text=True, check=True)
