"""AID against ITD (Grazzi et al., ICML 2020): hypergradient error against iterations on problems with an
exact implicit hypergradient."""
