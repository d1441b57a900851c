# Every experiment's tables and figures, from its descriptor's outputs (src/truncback/experiments/<name>/
# descriptor.py): one local rule each, running `python -m truncback <command> ... --output <stem>` (the
# output's path without its suffix) on the experiment's raw results only, its caption in Snakemake's report
# under the experiment's title; rule all asks for them.


def output_rule(experiment, entry, files):
    """Defines the rule of one table or figure; in a function, so that its shell command, which Snakemake
    evaluates again when the job runs, reads this entry's values, not the loop's last ones."""
    folder = TABLES if entry.kind == "table" else FIGURES
    paths = {suffix: f"{folder}/{entry.name}.{suffix}" for suffix in entry.suffixes}
    shown = "html" if entry.kind == "table" else "png"  # the file Snakemake's report shows
    paths[shown] = report(paths[shown], caption=str(Path("captions") / entry.caption), category=experiment.title)
    for also in entry.also:
        paths.update({f"{also}_{suffix}": f"{folder}/{entry.name}_{also}.{suffix}" for suffix in entry.suffixes})
    if entry.wildcard:
        values = entry.values(files)
        inputs = entry.inputs(files, values[0])
        function = lambda wildcards, entry=entry, files=files: entry.inputs(files, wildcards[entry.wildcard])
        positional, named = [unpack(function) if isinstance(inputs, dict) else function], {}
        constraints = {entry.wildcard: any_of(values)}
    else:
        inputs = entry.inputs(files)
        positional, named = ([], inputs) if isinstance(inputs, dict) else (inputs, {})
        constraints = {}

    rule:
        name:
            entry.rule
        input:
            *positional,
            **named,
        output:
            **paths,
        log:
            f"{LOGS}/{experiment.name}/{entry.log}.log",
        wildcard_constraints:
            **constraints,
        localrule: True
        resources:
            mem_mb=1000,
            runtime="10m",
        params:
            **entry.params(files),
            **{f"{also}_stem": stem(f"{also}_{entry.suffixes[0]}") for also in entry.also},
            stem=stem(entry.suffixes[0]),
            code=code(entry.command),
        shell:
            f"python -m truncback {entry.command} {entry.arguments} > {{log:q}} 2>&1"


for _experiment in EXPERIMENTS:
    FINAL_OUTPUTS.extend(_experiment.final_outputs(EXPERIMENT_FILES[_experiment.name], TABLES, FIGURES))
    for _output in _experiment.outputs:
        output_rule(_experiment, _output, EXPERIMENT_FILES[_experiment.name])
