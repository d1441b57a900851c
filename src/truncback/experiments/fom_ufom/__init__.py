"""FOM vs UFOM on the problem family of Likhosherstov et al. 2021 (companion paper): settings, closed-form
problem, runs, figure and tables."""
