# Datasets: one rule per archive (download, or take from data_dir; verify), one rule writing the
# synthetic fixtures the scale uses, one rule per prepared .npz, and `data_all` for all of them.
# Every step is a `python -m truncback data-*` command; the paths come from truncback.data.
from truncback.data import layout as data_layout
from truncback.data import sources as data_sources

DATA_SCALE = config["scale"]
DATA_DIR = config["data_dir"]
DATA_SETTINGS = config["data"]


for _data_archive in data_sources.ARCHIVES.values():

    rule:
        name:
            f"data_archive_{_data_archive.key}"
        output:
            str(data_layout.raw_path(_data_archive)),
        params:
            archive=_data_archive.key,
            scale=DATA_SCALE,
            source=["--data-dir", DATA_DIR] if DATA_DIR else ["--attempts", DATA_SETTINGS["download_attempts"]],
        retries: DATA_SETTINGS["rule_retries"]
        localrule: True
        log:
            f"logs/data/archive_{_data_archive.key}.log",
        shell:
            "python -m truncback data-fetch {params.archive:q} --scale {params.scale:q} {params.source:q}"
            " --output {output:q} 2>&1 | tee {log:q}"


_data_fixtures = data_sources.archives_of(DATA_SCALE, "fixture")
if _data_fixtures:

    rule data_fixtures:
        output:
            [str(data_layout.fixture_path(DATA_SCALE, item)) for item in _data_fixtures],
        params:
            size=config["dry_run"]["archive_sizes"] if DATA_SCALE == "dryrun" else DATA_SCALE,
            seed=DATA_SETTINGS["fixture_seed"],
        log:
            f"logs/data/fixtures_{DATA_SCALE}.log",
        benchmark:
            f"benchmarks/{DATA_SCALE}/data/fixtures.tsv"
        shell:
            "python -m truncback data-fixtures {output:q} --scale {params.size:q} --seed {params.seed:q}"
            " > {log:q} 2>&1"


for _data_recipe in data_sources.recipes(DATA_SCALE):

    rule:
        name:
            f"data_prepare_{_data_recipe.name}"
        input:
            [
                str(data_layout.source_path(DATA_SCALE, _data_recipe.origin, data_sources.archive(key)))
                for key in _data_recipe.archives
            ],
        output:
            str(data_layout.prepared_path(DATA_SCALE, _data_recipe.name)),
        params:
            dataset=_data_recipe.name,
            scale=DATA_SCALE,
        log:
            f"logs/data/prepare_{DATA_SCALE}_{_data_recipe.name}.log",
        benchmark:
            f"benchmarks/{DATA_SCALE}/data/prepare_{_data_recipe.name}.tsv"
        shell:
            "python -m truncback data-prepare {params.dataset:q} {input:q} --scale {params.scale:q}"
            " --output {output:q} > {log:q} 2>&1"


rule data_all:
    input:
        [str(data_layout.prepared_path(DATA_SCALE, entry.name)) for entry in data_sources.recipes(DATA_SCALE)],
