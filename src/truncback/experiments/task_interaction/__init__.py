"""Task interaction on CIFAR-10/100 (sec. 4.2.2, Table 3, Fig. 6): settings, features, problem, run,
table and figure."""
