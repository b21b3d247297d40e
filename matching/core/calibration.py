"""Logistic calibration of the decision: features of the chosen action -> probability right."""

from __future__ import annotations

import math
from collections.abc import Sequence

LOGIT_CLIP = 15.0


def sigmoid(x: float) -> float:
    """The logistic function, safe for large arguments."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def logit(p: float) -> float:
    """log(p / (1 - p)), clipped so certainty stays finite."""
    p = min(max(p, 1e-7), 1 - 1e-7)
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(p / (1 - p))))


def predict(coefs: dict[str, float], features: dict[str, float]) -> float:
    """The calibrated probability that the decision is right."""
    return sigmoid(sum(coefs.get(name, 0.0) * value for name, value in features.items()))


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve a small symmetric positive system by Gaussian elimination with pivoting."""
    n = len(vector)
    rows = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if abs(rows[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col and rows[r][col]:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [rows[i][n] / rows[i][i] if abs(rows[i][i]) >= 1e-12 else 0.0 for i in range(n)]


def fit(
    samples: Sequence[dict[str, float]],
    labels: Sequence[bool],
    names: Sequence[str],
    start: dict[str, float] | None = None,
    penalty: float = 0.5,
    iterations: int = 30,
) -> dict[str, float]:
    """Penalised logistic regression by Newton steps, shrunk toward `start` (MAP estimate)."""
    centre = [float((start or {}).get(n, 0.0)) for n in names]
    beta = centre[:]
    rows = [[s.get(n, 0.0) for n in names] for s in samples]
    ys = [1.0 if y else 0.0 for y in labels]
    k = len(names)
    for _ in range(iterations):
        grad = [-penalty * (beta[j] - centre[j]) for j in range(k)]
        hess = [[penalty if i == j else 0.0 for j in range(k)] for i in range(k)]
        for x, y in zip(rows, ys, strict=True):
            p = sigmoid(sum(b * v for b, v in zip(beta, x, strict=True)))
            w = p * (1 - p)
            for i in range(k):
                if x[i]:
                    grad[i] += (y - p) * x[i]
                    wx = w * x[i]
                    for j in range(i, k):
                        if x[j]:
                            hess[i][j] += wx * x[j]
        for i in range(k):
            for j in range(i):
                hess[i][j] = hess[j][i]
        step = _solve(hess, grad)
        beta = [b + s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return {n: round(b, 6) for n, b in zip(names, beta, strict=True)}
