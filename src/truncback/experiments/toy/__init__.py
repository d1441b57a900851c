"""The toy problem of sec. 4.1 (Figs. 1-4): settings, closed-form problem, runs and figures."""
