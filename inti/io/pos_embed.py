"""Position embeddings at another image size: bicubic resampling of the position grid, exactly
as torch's ``F.interpolate(mode="bicubic", align_corners=False)`` and timm's
``resample_abs_pos_embed`` compute it (spec/07-pretrained-layouts.md). NumPy only.

    >>> import numpy as np
    >>> bicubic_matrix(3, 3).round(12).tolist() == np.eye(3).tolist()
    True
"""

from __future__ import annotations

import numpy as np

def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel W(x) with parameter a (torch: a = -0.75; antialias: -0.5)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1  # |x| <= 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # 1 < |x| < 2
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def bicubic_matrix(in_size: int, out_size: int, antialias: bool = False) -> np.ndarray:
    """The (out_size, in_size) matrix M of 1-D bicubic resampling, exactly as torch's
    ``F.interpolate(mode="bicubic", align_corners=False)`` computes it: y = M @ x.

    Without antialias: output i samples the input at s = (i + 1/2) * in/out - 1/2 with the
    four taps floor(s)-1 ... floor(s)+2, kernel a = -0.75, indices clamped to the edge.
    With antialias (torch's and PIL's filter): the kernel (a = -0.5) is stretched by in/out when
    shrinking, truncated at the edges, and each row renormalised to sum 1."""
    scale = in_size / out_size
    out = np.arange(out_size)[:, None]  # (out, 1)
    if not antialias:
        src = scale * (out + 0.5) - 0.5
        first = np.floor(src).astype(int)
        m = np.zeros((out_size, in_size))
        for tap in range(-1, 3):  # four taps; edge indices repeat, so accumulate
            np.add.at(m, (np.broadcast_to(out, first.shape), np.clip(first + tap, 0, in_size - 1)),
                      _cubic(first + tap - src, -0.75))
        return m
    support, stretch = (2.0 * scale, 1.0 / scale) if scale >= 1 else (2.0, 1.0)
    centre = scale * (out + 0.5)
    lo = np.maximum(np.trunc(centre - support + 0.5), 0)  # torch truncates toward zero, as int64_t(...)
    hi = np.minimum(np.trunc(centre + support + 0.5), in_size)
    j = np.arange(in_size)[None, :]  # (1, in)
    m = np.where((j >= lo) & (j < hi), _cubic((j - centre + 0.5) * stretch, -0.5), 0.0)
    return m / m.sum(axis=1, keepdims=True)


def resample_pos_embed(pos: np.ndarray, old_grid: int, new_grid: int, antialias: bool = False) -> np.ndarray:
    """Position embeddings for another patch grid: (old_grid^2 + 1, C) -> (new_grid^2 + 1, C).

    The class token's row is kept; the grid rows, laid out (h w) row-major, are resampled
    bicubically along h and along w (separable, `bicubic_matrix`), as torch's F.interpolate
    and timm's resample_abs_pos_embed do. Computed in float64, returned in pos's dtype. At the
    native size (new_grid == old_grid) the matrix is the identity and pos comes back unchanged."""
    pos = np.asarray(pos)
    if pos.ndim != 2 or pos.shape[0] != old_grid**2 + 1:
        raise ValueError(f"pos must have shape (old_grid^2 + 1, C) = ({old_grid**2 + 1}, C), got {pos.shape}")
    if new_grid == old_grid:
        return pos.copy()
    m = bicubic_matrix(old_grid, new_grid, antialias)  # (new, old)
    grid = pos[1:].astype(np.float64).reshape(old_grid, old_grid, -1)  # (h, w, C)
    grid = np.einsum("ih,jw,hwc->ijc", m, m, grid).reshape(new_grid**2, -1)  # (h' w', C)
    return np.concatenate([pos[:1], grid.astype(pos.dtype)], axis=0)
