"""truncback: hypergradients for bilevel optimisation and the reproduction of Shaban et al. (2019).

The engine lives in :mod:`truncback.hypergrad`; experiments, data and plotting build on it.
"""

__version__ = "0.1.0"
