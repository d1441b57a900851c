"""One-shot Omniglot meta-learning (sec. 4.3, Table 4, Fig. 7): settings, tasks, model, evaluation,
run, depth study, table and figure."""
