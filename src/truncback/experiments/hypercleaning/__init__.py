"""Data hypercleaning (sec. 4.2.1, Table 2, Fig. 5): settings, problem, run, table and figure."""
