# Datasets: one rule per archive (download, or take from data_dir; verify), one rule writing the
# synthetic fixtures the scale uses, one rule per prepared .npz. Every step is a
# `python -m truncback data-*` command; the paths come from truncback.data.


for _archive in data_sources.ARCHIVES.values():

    rule:
        name:
            f"data_archive_{_archive.key}"
        output:
            str(data_layout.raw_path(_archive)),
        log:
            f"logs/data/archive_{_archive.key}.log",
        localrule: True
        resources:
            mem_mb=500,
            runtime="1h",
        params:
            archive=_archive.key,
            digests=json.dumps(_archive.digests.recorded(), sort_keys=True),
        shell:
            "python -m truncback data-fetch {params.archive:q} {FETCH_OPTIONS} --output {output:q} 2>&1 | tee {log:q}"


if DATA_FIXTURES:

    rule data_fixtures:
        output:
            [str(data_layout.fixture_path(SCALE, item)) for item in DATA_FIXTURES],
        log:
            f"{LOGS}/data/fixtures.log",
        benchmark:
            benchmark("data", "fixtures")
        localrule: True
        resources:
            mem_mb=1000,
            runtime="15m",
        params:
            size=config["rehearsal"]["archive_sizes"] if SCALE == "rehearsal" else SCALE,
            seed=config["data"]["fixture_seed"],
            code=code("data-fixtures"),
        shell:
            "python -m truncback data-fixtures {output:q} --scale {params.size:q} --seed {params.seed:q}"
            " > {log:q} 2>&1"


for _recipe in DATA_RECIPES:

    rule:
        name:
            f"data_prepare_{_recipe.name}"
        input:
            [str(data_layout.source_path(SCALE, _recipe.origin, data_sources.archive(key))) for key in _recipe.archives],
        output:
            prepared(_recipe.name),
        log:
            f"{LOGS}/data/prepare_{_recipe.name}.log",
        benchmark:
            benchmark("data", f"prepare_{_recipe.name}")
        localrule: True
        resources:
            mem_mb=1000,
            runtime="15m",
        params:
            dataset=_recipe.name,
            scale=SCALE,
            code=code("data-prepare"),
        shell:
            "python -m truncback data-prepare {params.dataset:q} {input:q} --scale {params.scale:q}"
            " --output {output:q} > {log:q} 2>&1"


rule data_all:
    input:
        [prepared(entry.name) for entry in DATA_RECIPES],
