{
  description = "truncback: truncated back-propagation for bilevel optimisation (Shaban et al., AISTATS 2019), reproduced";

  # flake.lock pins this input to one nixos-26.05 revision (docs/reproducing.md, Nix).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      # Linux only. Darwin is not offered: nothing was ever built or tested there, nixpkgs 26.05 is
      # x86_64-darwin's last release, torch's compile tests have failed on darwin before, and darwin's
      # build sandbox refuses the 127.0.0.1 HTTP server of the download tests unless the check sets
      # __darwinAllowLocalNetworking. On a Mac, use the venv (`make test`).
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # requirements.lock, the pins the venv installs (`make`), as { name = { version; sha256; }; }:
      # sha256 (hex) where the line carries `--hash=sha256:...`, which pip checks in the venv, else null.
      lockLines = builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile ./requirements.lock));
      pins = builtins.listToAttrs (map
        (m: { name = builtins.elemAt m 0; value = { version = builtins.elemAt m 1; sha256 = builtins.elemAt m 3; }; })
        (builtins.filter (m: m != null)
          (map (builtins.match "([A-Za-z0-9_.-]+)==([^ ]+)( --hash=sha256:([0-9a-f]{64}))?") lockLines)));

      # The wheels the flake takes from PyPI instead of nixpkgs: Snakemake, so that the venv and the
      # flake run the same Snakemake (its messages are what the pipeline tests read) and its report
      # keeps its JavaScript and CSS (the wheel ships them; nixpkgs builds Snakemake from its sources
      # in the sandbox, where the assets' download fails, and patches the failure into assets holding
      # the bytes "err"); and the three packages whose versions Snakemake 9.27.1 asks for beyond what
      # nixpkgs' Snakemake 9.16.x did (sqlmodel 0.0.37, tenacity >= 9.1.4, the storage-plugin
      # interface >= 4.4.1). Each wheel's version and sha256 are its line of requirements.lock; the
      # address is the file pip downloads for that line.
      wheelUrls = {
        snakemake = "https://files.pythonhosted.org/packages/d4/24/08e5bd06a94770441f844611fa50626d06f2170f037bd37019b2b8b3e489/snakemake-9.27.1-py3-none-any.whl";
        sqlmodel = "https://files.pythonhosted.org/packages/b1/e1/7c8d18e737433f3b5bbe27b56a9072a9fcb36342b48f1bef34b6da1d61f2/sqlmodel-0.0.37-py3-none-any.whl";
        tenacity = "https://files.pythonhosted.org/packages/d6/26/1ff2b0721ac66a3ec5b1402b333110b352ab0a8724052ac279a7b82d40c4/tenacity-9.2.1-py3-none-any.whl";
        snakemake-interface-storage-plugins = "https://files.pythonhosted.org/packages/b6/49/1f72d8c05d8588f06a61f1af3deb125a4ff8169d2a41f1b839d62c824d1c/snakemake_interface_storage_plugins-4.4.1-py3-none-any.whl";
      };
      lockedWheel = pkgs: name:
        let
          pin = pins.${name} or (throw "requirements.lock pins no ${name}, whose wheel flake.nix takes");
          url = wheelUrls.${name};
          suffix = "-${pin.version}-py3-none-any.whl";
          urlLength = builtins.stringLength url;
          suffixLength = builtins.stringLength suffix;
        in
        if builtins.substring (urlLength - suffixLength) suffixLength url != suffix then
          throw "flake.nix: the wheel address of ${name} is not version ${pin.version}, requirements.lock's"
        else if pin.sha256 == null then
          throw "requirements.lock: ${name}==${pin.version} carries no --hash=sha256:, which the flake fetches by"
        else
          pkgs.fetchurl { inherit url; inherit (pin) sha256; };

      # A nixpkgs Python package replaced by the wheel of requirements.lock's version (nothing to build,
      # nothing patched; its tests live in its sources, not in the wheel: the import check stays).
      fromLock = pkgs: package: name: extra: package.overridePythonAttrs (old: {
        version = pins.${name}.version;
        src = lockedWheel pkgs name;
        format = "wheel";
        pyproject = null;
        patches = [ ];
        postPatch = "";
        doCheck = false;
        testPaths = [ ];
      } // extra old);

      # nixpkgs' Python 3 with the wheels above. The other packages are nixpkgs' own: torch 2.11.0
      # (the venv: 2.13.0), Python 3.13, and nixpkgs' numpy, pandas, matplotlib, pillow and pytest
      # (requirements.lock: numpy 2.3.5, pandas 2.3.3, matplotlib 3.10.7, pillow 11.3.0, pytest 8.4.2).
      # What that changes: last digits of floating-point results, which training amplifies (judge
      # against intervals, as the report does; a PNG may differ in its bytes); torch-computing jobs
      # carry torch's version, so switching between the venv and the flake reruns them, and a
      # checkpoint written under the other torch is not resumed.
      python = pkgs:
        let
          py = pkgs.python3.override {
            self = py;
            packageOverrides = final: prev: {
              sqlmodel = fromLock pkgs prev.sqlmodel "sqlmodel" (old: { });
              tenacity = fromLock pkgs prev.tenacity "tenacity" (old: { });
              snakemake-interface-storage-plugins = fromLock pkgs prev.snakemake-interface-storage-plugins
                "snakemake-interface-storage-plugins"
                (old: {
                  dependencies = with final; [ humanfriendly snakemake-interface-common tenacity throttler wrapt ];
                  propagatedBuildInputs = [ ];
                });
              # nixpkgs' Snakemake package, built with this package set, replaced by the lock's wheel.
              # No postPatch: nixpkgs' one turns a failed report-asset download into assets holding "err".
              # Its dependencies are the wheel's (Requires-Dist), pygments for the report included.
              # nixpkgs checks a wheel's Requires-Dist against the set (pythonRuntimeDepsCheckHook)
              # only for source builds: the import check is what runs here.
              snakemake = final.toPythonModule (fromLock pkgs (pkgs.snakemake.override { python3Packages = final; })
                "snakemake"
                (old: {
                  dependencies = with final; [
                    conda-inject configargparse connection-pool docutils dpath gitpython humanfriendly
                    immutables jinja2 jsonschema nbformat packaging platformdirs psutil pulp pygments pyyaml
                    referencing requests smart-open snakemake-interface-common
                    snakemake-interface-executor-plugins snakemake-interface-logger-plugins
                    snakemake-interface-report-plugins snakemake-interface-scheduler-plugins
                    snakemake-interface-storage-plugins sqlmodel tabulate tenacity throttler wrapt yte
                  ];
                  propagatedBuildInputs = [ ];
                }));
            };
          };
        in
        py;

      # One interpreter with the library's dependencies, the tests' (pytest; build and setuptools for
      # tests/test_wheel.py) and Snakemake as a module, so the Snakefile (which imports truncback) and
      # the rules' `python -m truncback` share it. The package itself comes from ./src of the checkout
      # through PYTHONPATH.
      pythonEnv = pkgs: (python pkgs).withPackages (ps: [
        ps.torch
        ps.numpy
        ps.pandas
        ps.matplotlib
        ps.pillow
        ps.pyyaml
        ps.tabulate
        ps.jinja2
        ps.pytest
        ps.build
        ps.setuptools
        ps.snakemake
      ]);

      # torch.compile (the paper scale's `compile: strict`) builds its CPU kernels with a C++ compiler.
      cxx = pkgs: pkgs.stdenv.cc;

      # What the test suite runs beside Python and the standard environment's tools (tests/test_nix.py
      # keeps this list and the suite's calls in step): git, for the scratch exports of
      # tests/test_pipeline_scratch.py.
      testTools = pkgs: [ pkgs.git ];

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
          packages = [ (pythonEnv pkgs) pkgs.gnumake (cxx pkgs) ] ++ testTools pkgs;
          shellHook = ''
            export PYTHONPATH="$PWD/src''${PYTHONPATH:+:$PYTHONPATH}"
          '';
        };
      });

      # nix run .#reproduce -- --config scale=smoke   (arguments go to snakemake)
      apps = forAllSystems (pkgs: rec {
        reproduce = {
          type = "app";
          program = "${reproduceScript pkgs}/bin/truncback-reproduce";
          meta.description = "Run the reproduction pipeline (snakemake --cores all ARGS) in a truncback checkout";
        };
        default = reproduce;
      });

      # nix flake check: the whole pytest suite (including the smoke pipeline) in the build sandbox.
      checks = forAllSystems (pkgs: {
        pytest = pkgs.runCommandCC "truncback-pytest" { nativeBuildInputs = [ (pythonEnv pkgs) ] ++ testTools pkgs; } ''
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
