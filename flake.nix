{
  description = "truncback: truncated back-propagation for bilevel optimisation (Shaban et al., AISTATS 2019), reproduced";

  # flake.lock pins this input to one nixos-26.05 revision (README, Nix).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # One interpreter with the library's dependencies, pytest and Snakemake as a module, so the
      # Snakefile (which imports truncback) and the rules' `python -m truncback` share it. The
      # package itself comes from ./src of the checkout through PYTHONPATH.
      pythonEnv = pkgs: pkgs.python3.withPackages (ps: [
        ps.torch
        ps.numpy
        ps.pandas
        ps.matplotlib
        ps.pillow
        ps.pyyaml
        ps.tabulate
        ps.jinja2
        ps.pytest
        (ps.toPythonModule pkgs.snakemake)
      ]);

      # torch.compile (the paper scale's `compile: strict`) builds its CPU kernels with a C++ compiler.
      cxx = pkgs: pkgs.stdenv.cc;

      reproduceScript = pkgs: pkgs.writeShellApplication {
        name = "truncback-reproduce";
        runtimeInputs = [ (pythonEnv pkgs) (cxx pkgs) ];
        text = ''
          if [ ! -f Snakefile ] || [ ! -d src/truncback ]; then
            echo "run this from the root of a truncback checkout (the folder with Snakefile and src/)" >&2
            exit 1
          fi
          export PYTHONPATH="$PWD/src''${PYTHONPATH:+:$PYTHONPATH}"
          exec snakemake --cores all "$@"
        '';
      };
    in
    {
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [ (pythonEnv pkgs) pkgs.gnumake (cxx pkgs) ];
          shellHook = ''
            export PYTHONPATH="$PWD/src''${PYTHONPATH:+:$PYTHONPATH}"
          '';
        };
      });

      # nix run .#reproduce -- --config scale=smoke   (arguments go to snakemake)
      apps = forAllSystems (pkgs: rec {
        reproduce = { type = "app"; program = "${reproduceScript pkgs}/bin/truncback-reproduce"; };
        default = reproduce;
      });

      # nix flake check: the whole pytest suite (including the smoke pipeline) in the build sandbox.
      checks = forAllSystems (pkgs: {
        pytest = pkgs.runCommandCC "truncback-pytest" { nativeBuildInputs = [ (pythonEnv pkgs) ]; } ''
          cp -r ${self} source
          chmod -R u+w source
          cd source
          export HOME="$TMPDIR" MPLCONFIGDIR="$TMPDIR/matplotlib" PYTHONPATH="$PWD/src"
          python -m pytest -p no:cacheprovider
          touch $out
        '';
      });
    };
}
