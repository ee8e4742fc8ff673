"""Expert-routing report for Glm4vMoe checkpoints.

`generate()` does not return router logits, so forward hooks on every MoE router
(`...layers.N.mlp.gate`, Glm4vMoeTextTopkRouter: sigmoid scores + correction bias -> top-k)
read its (router_logits, topk_weights, topk_indices) output. Counts stay on the model's device
during a call (no per-layer host sync while decoding) and are moved to the host once at the end.
Dense layers (layer 0 on GLM-4.5V) have no router and no entry.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import torch

_GATE = re.compile(r"(?:^|\.)layers\.(\d+)\.mlp\.gate$")


class RoutingRecorder:
    def __init__(self, model: torch.nn.Module, *, trace: bool = True) -> None:
        self.trace_enabled = trace
        self.layers: dict[int, torch.nn.Module] = {}
        for name, module in model.named_modules():
            m = _GATE.search(name)
            if m and hasattr(module, "top_k") and hasattr(module, "weight"):
                self.layers[int(m.group(1))] = module
        first: Any = next(iter(self.layers.values()), None)
        self.num_experts = int(first.weight.shape[0]) if first is not None else 0
        self.top_k = int(first.top_k) if first is not None else 0
        self._lock = threading.Lock()
        self._totals: dict[int, torch.Tensor] = {
            i: torch.zeros(self.num_experts, dtype=torch.long) for i in self.layers
        }
        self._tokens_total = 0
        self._active = False
        self._call_counts: dict[int, torch.Tensor] = {}
        self._call_weight_sum: dict[int, torch.Tensor] = {}
        self._call_tokens: dict[int, int] = {}
        self._trace: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._last_trace: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._handles = [mod.register_forward_hook(self._hook(i)) for i, mod in self.layers.items()]

    @property
    def moe_layers(self) -> list[int]:
        return sorted(self.layers)

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, layer: int):
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, tuple) or len(output) < 3:
                return
            weights, indices = output[1], output[2]
            with torch.no_grad():
                idx = indices.reshape(-1, indices.shape[-1])
                counts = torch.bincount(idx.reshape(-1), minlength=self.num_experts)
                if layer in self._call_counts:
                    self._call_counts[layer] += counts
                    self._call_weight_sum[layer] += weights.detach().float().sum(0)
                else:
                    self._call_counts[layer] = counts.clone()
                    self._call_weight_sum[layer] = weights.detach().float().sum(0)
                self._call_tokens[layer] = self._call_tokens.get(layer, 0) + idx.shape[0]
                if self.trace_enabled:
                    self._trace.setdefault(layer, []).append(
                        (idx.detach(), weights.detach().float())
                    )

        return hook

    def start(self) -> None:
        """Begin a call: what the hooks see until `finish()` belongs to it."""
        self._call_counts = {}
        self._call_weight_sum = {}
        self._call_tokens = {}
        self._trace = {}

    def finish(self) -> dict[str, Any]:
        """End the call: fold it into the totals and return its report."""
        report: dict[str, Any] = {
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "moe_layers": self.moe_layers,
            "layers": {},
        }
        with self._lock:
            tokens = 0
            for layer in self.moe_layers:
                counts = self._call_counts.get(layer)
                if counts is None:
                    continue
                counts_cpu = counts.cpu()
                self._totals[layer] += counts_cpu
                n = self._call_tokens.get(layer, 0)
                tokens = max(tokens, n)
                wsum = self._call_weight_sum[layer].cpu()
                hist = counts_cpu.tolist()
                report["layers"][layer] = {
                    "tokens": n,
                    "histogram": hist,
                    "top_experts": sorted(range(len(hist)), key=lambda e: -hist[e])[: self.top_k],
                    "mean_topk_weight": [round(float(w) / max(n, 1), 4) for w in wsum],
                }
            self._tokens_total += tokens
            report["tokens"] = tokens
            if self.trace_enabled:
                self._last_trace = {
                    layer: (
                        torch.cat([i for i, _ in parts]).cpu(),
                        torch.cat([w for _, w in parts]).cpu(),
                    )
                    for layer, parts in self._trace.items()
                }
            self._call_counts, self._call_weight_sum, self._trace = {}, {}, {}
        return report

    def last_trace(self) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Per MoE layer: (topk_indices int64[tokens, k], topk_weights float32[tokens, k]) of
        the last finished call, prefill and every decoded token."""
        return dict(self._last_trace)

    def counts(self) -> dict[int, list[int]]:
        """Cumulative tokens routed to each expert, per MoE layer, since load."""
        with self._lock:
            return {layer: t.tolist() for layer, t in sorted(self._totals.items())}

    def prometheus_lines(self, prefix: str = "glimpse_glm") -> list[str]:
        lines = [
            f"# HELP {prefix}_expert_tokens_total Tokens routed to each expert (top-k picks).",
            f"# TYPE {prefix}_expert_tokens_total counter",
        ]
        for layer, counts in self.counts().items():
            for expert, c in enumerate(counts):
                lines.append(
                    f'{prefix}_expert_tokens_total{{layer="{layer}",expert="{expert}"}} {c}'
                )
        return lines
