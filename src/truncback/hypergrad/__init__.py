"""The hypergradient engine: d_lam f of a bilevel problem whose lower level is an iterative
algorithm (Shaban et al. 2019, eqs. 4-8, Table 1).

Every method is a plain function ``method(problem, hparams, [options], return_info=False)`` that
returns the hypergradient with the structure of ``hparams`` (and a :class:`HypergradInfo` when
``return_info``; the methods that record ||alpha_t|| there also take ``alpha_norms=False``, which
leaves them out). A method is also data, ``{"name": "krmd", "K": 5}``: ``METHODS`` declares each
method's options and ``hypergradient(problem, hparams, spec)`` computes any spec.
"""

from truncback.hypergrad.first_order import exact_constant_memory, fom, ufom
from truncback.hypergrad.forward import fmd
from truncback.hypergrad.implicit import aid, aid_cg, aid_fp
from truncback.hypergrad.methods import (
    EXACTNESS,
    METHODS,
    Bench,
    Cost,
    Method,
    Option,
    display_name,
    hypergradient,
    is_exact,
    label,
    parse_spec,
    register,
    resolve,
    without_alpha_norms,
)
from truncback.hypergrad.modules import ModuleAt, module_problem
from truncback.hypergrad.problem import BilevelProblem, gradient_descent, heavy_ball
from truncback.hypergrad.result import HypergradInfo
from truncback.hypergrad.reverse import checkpointed, krmd, krmd_all_depths, rmd, unrolled
from truncback.hypergrad.solvers import SOLVERS, conjugate_gradient, fixed_point

__all__ = [
    "Bench",
    "BilevelProblem",
    "Cost",
    "EXACTNESS",
    "HypergradInfo",
    "METHODS",
    "Method",
    "ModuleAt",
    "Option",
    "SOLVERS",
    "aid",
    "aid_cg",
    "aid_fp",
    "checkpointed",
    "conjugate_gradient",
    "display_name",
    "exact_constant_memory",
    "fixed_point",
    "fmd",
    "fom",
    "gradient_descent",
    "heavy_ball",
    "hypergradient",
    "is_exact",
    "krmd",
    "krmd_all_depths",
    "label",
    "module_problem",
    "parse_spec",
    "register",
    "resolve",
    "rmd",
    "ufom",
    "unrolled",
    "without_alpha_norms",
]
