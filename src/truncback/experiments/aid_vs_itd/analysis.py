"""What the table, the figure and the report read off an AID-vs-ITD result: the iterations a method
needs to reach a relative error, and the linear rate its error converges at."""

import math

import numpy as np

RATE_WINDOW = (1e-10, 1e-1)
"""Relative errors between these bounds are fitted for the rate: past the transient, above rounding."""


def iterations_to(iterations, errors, tolerance: float):
    """The first t of the grid from which the error stays at or below ``tolerance``; None if it never does."""
    reached = None
    for t, error in zip(iterations, errors):
        if error <= tolerance:
            reached = t if reached is None else reached
        else:
            reached = None
    return reached


def fitted_rate(iterations, errors):
    """q of error ~ C q^t: exp of the least-squares slope of log(error) against t over the errors in
    RATE_WINDOW (None with fewer than 3 of them)."""
    points = [(t, math.log(e)) for t, e in zip(iterations, errors) if RATE_WINDOW[0] <= e <= RATE_WINDOW[1]]
    if len(points) < 3:
        return None
    t, log_error = np.array(points).T
    return math.exp(np.polyfit(t, log_error, 1)[0])


def curve(result: dict, start: str, name: str) -> dict | None:
    """The result's curve of the method ``name`` (rmd, aid_fp, ...) from the ``start`` setting (cold or
    warm), or None."""
    return next((entry for entry in result["methods"][start] if entry["spec"]["name"] == name), None)
