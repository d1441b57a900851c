"""The hypergradient engine: d_lam f of a bilevel problem whose lower level is an iterative
algorithm (Shaban et al. 2019, eqs. 4-8, Table 1).

Every method is a plain function ``method(problem, hparams, [options], return_info=False)`` that
returns the hypergradient with the structure of ``hparams`` (and a :class:`HypergradInfo` when
``return_info``). ``METHODS`` maps names to them; ``hypergradient`` picks one by name.
"""

from truncback.hypergrad.first_order import exact_constant_memory, fom, ufom
from truncback.hypergrad.forward import fmd
from truncback.hypergrad.implicit import aid_cg, aid_fp
from truncback.hypergrad.problem import BilevelProblem, gradient_descent, heavy_ball
from truncback.hypergrad.result import HypergradInfo
from truncback.hypergrad.reverse import checkpointed, krmd, krmd_all_depths, rmd

METHODS = {
    "rmd": rmd,
    "krmd": krmd,
    "checkpointed": checkpointed,
    "fmd": fmd,
    "aid_cg": aid_cg,
    "aid_fp": aid_fp,
    "fom": fom,
    "ufom": ufom,
}


def hypergradient(problem, hparams, method: str = "rmd", **options):
    """``METHODS[method](problem, hparams, **options)``, e.g. ``hypergradient(p, lam, "krmd", K=5)``."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {sorted(METHODS)}")
    return METHODS[method](problem, hparams, **options)


__all__ = ["BilevelProblem", "HypergradInfo", "METHODS", "aid_cg", "aid_fp", "checkpointed",
           "exact_constant_memory", "fmd", "fom", "gradient_descent", "heavy_ball", "hypergradient",
           "krmd", "krmd_all_depths", "rmd", "ufom"]
