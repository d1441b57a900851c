"""The rehearsal of the paper scale (``--config scale=rehearsal``): every job of the full-scale DAG, on
seeded synthetic archives of the published sizes, with each hyper-optimisation capped at a few
hyper-iterations (:mod:`.caps`), and the full run's wall time estimated from what it measured
(:mod:`.estimates`)."""
