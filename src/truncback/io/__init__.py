"""Writing outputs: files written whole or not at all (``atomic``), tables in every format the
pipeline commits (``tables``) and figures (``plotting``); below the data and the experiments, above
the engine."""
