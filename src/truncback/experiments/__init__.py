"""Experiments of sec. 4: one module per experiment builds its bilevel problem from the config, runs the
hyper-optimisation and writes a raw result file under results/<scale>/ (no plotting)."""
