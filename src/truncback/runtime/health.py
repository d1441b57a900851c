"""A run's health: whether its lower level was well-posed, judged from what the harness recorded.

Truncated back-propagation's guarantees (sec. 3, Prop. 3.6) assume a lower level that contracts: gradient
descent with a step size below 1/beta on a loss of curvature beta. A run is UNSTABLE when

- its exact hypergradient ||d_lam f|| grows to more than ``GROWTH_LIMIT`` times its value at the first
  exact comparison (the exact gradient exploding, which a clip on the hyper-step would otherwise hide), or
  is not finite at some comparison (the estimate h may stay finite while the exact reverse pass
  overflows); or
- its lower level diverged in some hyper-iteration: g(w_T, lam) ended above g(w_0, lam), or was not
  finite (gradient descent with a step that suits the curvature decreases g at every step, so ending
  above the start means the step was too long for it).

The numbers of an UNSTABLE run are shown, but not judged as a reproduction of the paper's.
"""

import math

GROWTH_LIMIT = 100.0
STABLE, UNSTABLE = "STABLE", "UNSTABLE"
CRITERIA = (
    f"UNSTABLE: the exact hypergradient grew to more than {GROWTH_LIMIT:g}x its first value or was not finite, "
    "or the lower level ended a hyper-iteration above where it started (g(w_T) > g(w_0)) or not finite"
)


def lower_objectives(problem, lam, final_state) -> tuple[float, float] | None:
    """(g(w_0, lam), g(w_T, lam)) of ``problem`` whose lower level ended at ``final_state``, where its step
    exposes the objective it descends (``lower_objective``: gradient descent, heavy ball); else None."""
    objective = getattr(problem.step, "lower_objective", None)
    if objective is None:
        return None
    return objective(problem.init(lam), lam), objective(final_state, lam)


def diverged(start: float, end: float) -> bool:
    """Whether a lower level that began at g = ``start`` and ended at g = ``end`` diverged."""
    return not math.isfinite(end) or end > start


def run_health(exact_norms, clip_scales, clipped_steps: int, iterations: int, lower: dict) -> dict:
    """The health of a run from its record: ``exact_norms`` (||d_lam f|| at each exact comparison),
    ``clip_scales`` (per hyper-iteration the factor clipping scaled h by, 1 where it did not),
    ``clipped_steps`` of ``iterations``, and ``lower`` ({"start": [...], "end": [...], "divergences": n}:
    per hyper-iteration the mean g(w_0) and g(w_T) over its problems, and how many problems diverged).
    Returns the figures and the verdict (STABLE or UNSTABLE, with its reasons)."""
    norms = [float(n) for n in exact_norms]
    finite = [n for n in norms if math.isfinite(n)]
    growth = max(finite) / norms[0] if finite and norms[0] > 0 and math.isfinite(norms[0]) else None
    reasons = []
    if growth is not None and growth > GROWTH_LIMIT:
        reasons.append(f"exact hypergradient grew {growth:.3g}x (limit {GROWTH_LIMIT:g}x)")
    if len(finite) < len(norms):
        reasons.append(f"exact hypergradient not finite at {len(norms) - len(finite)} of {len(norms)} comparison(s)")
    divergences = int(lower.get("divergences", 0))
    if divergences:
        reasons.append(f"lower level diverged in {divergences} problem(s)")
    ratios = [end / start for start, end in zip(lower.get("start", []), lower.get("end", [])) if start > 0]
    return {
        "verdict": UNSTABLE if reasons else STABLE,
        "reasons": reasons,
        "exact_norm_first": norms[0] if norms else None,
        "exact_norm_largest": max(finite) if finite else None,
        "exact_norms_not_finite": len(norms) - len(finite),
        "exact_growth": growth,
        "clipped_fraction": clipped_steps / iterations if iterations else 0.0,
        "largest_clip_factor": 1.0 / min(clip_scales) if clip_scales else 1.0,
        "lower_divergences": divergences,
        "lower_loss_ratio_largest": max(ratios) if ratios else None,
        "lower_level_checked": bool(lower.get("start")),
    }


def describe(health: dict) -> str:
    """One line: the verdict and the figures behind it."""
    parts = [health["verdict"]]
    if health["exact_growth"] is not None:
        parts.append(
            f"exact |d f| {health['exact_norm_first']:.3g} -> largest {health['exact_norm_largest']:.3g} "
            f"({health['exact_growth']:.3g}x)"
        )
    parts.append(f"{health['clipped_fraction']:.0%} of steps clipped")
    if health["clipped_fraction"]:
        parts.append(f"by up to {health['largest_clip_factor']:.3g}x")
    if health["lower_level_checked"]:
        ratio = health["lower_loss_ratio_largest"]
        parts.append(
            f"lower level diverged {health['lower_divergences']} time(s)"
            + (f", g(w_T)/g(w_0) at most {ratio:.3g}" if ratio is not None else "")
        )
    if health["reasons"]:
        parts.append("because " + "; ".join(health["reasons"]))
    return ", ".join(parts)
