"""Measured cost: torch's FlopCounterMode, with the CPU's fused attention kernel registered.

On the CPU, `F.scaled_dot_product_attention` runs `aten._scaled_dot_product_flash_attention_for_cpu`,
for which torch registers no FLOP formula, so the counter would silently miss 2*N*N*C MACs
per block and frame. Importing this module registers the same formula torch uses for its
other SDPA kernels (forward and backward), so the counter sees the path that really runs.
FlopCounterMode counts FLOPs = 2 x MACs; it sees matrix products and convolutions, not the
interpolation's elementwise multiplies (ref.count_macs(...)["matmul"] is that share).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import (
    FlopCounterMode,
    register_flop_formula,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

_aten = torch.ops.aten
CPU_SDPA = _aten._scaled_dot_product_flash_attention_for_cpu
CPU_SDPA_BACKWARD = _aten._scaled_dot_product_flash_attention_for_cpu_backward


def _register() -> None:
    from torch.utils.flop_counter import flop_registry

    if CPU_SDPA not in flop_registry:  # keyed by the op packet

        @register_flop_formula(CPU_SDPA)
        def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query_shape, key_shape, value_shape)

    if CPU_SDPA_BACKWARD not in flop_registry:

        @register_flop_formula(CPU_SDPA_BACKWARD)
        def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_register()


def count_flops(model: torch.nn.Module, video: torch.Tensor) -> dict:
    """FLOPs (2 x MACs) of one forward, as FlopCounterMode sees them.

    Returns {"total": int, "by_op": {op name: int}}; runs under no_grad."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(video)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": int(counter.get_total_flops()), "by_op": by_op}
