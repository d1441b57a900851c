"""Float32 matrix products on the CPU through oneDNN, for the compiled fast path.

torch's own CPU matrix product (``aten.mm``: MKL's sgemm in the x86 wheels) is slow on the skinny
products of a linear model's step: on this project's 2-core AMD EPYC it takes 1.6-2.5 ms for the
hypercleaning logits X W^T (X 5000 x 785, W 10 x 785), where oneDNN's matmul, which torch ships for
its convolutions, takes 0.7 ms (``python -m truncback bench-baselines`` times both floors).
``replace_products`` is an inductor graph pass (``graph_pass()``) that, in the programs ``torch.compile``
makes of a step, replaces every 2-D float32 CPU product (``aten.mm``, and ``aten.addmm`` as a product
plus an addition) of at least ``MIN_MULTIPLY_ADDS`` by ``truncback::onednn_mm``, an operator that calls
oneDNN. Smaller products keep torch's: there the operator's fixed cost (about 35 us a call) and
oneDNN's weaker kernels for mid-sized products outweigh what it saves (``MIN_MULTIPLY_ADDS``). Other
dtypes (float64 included) and devices keep torch's own product, so the exactness checks at float64
run unchanged.

The value is the same product: only the order of the float32 additions differs (errors of a few
ulps of the result's scale, measured against float64 by the tests). oneDNN's product is
deterministic for a given machine, thread count and shapes, so a run repeats byte for byte.
"""

import collections
import functools
import hashlib
from pathlib import Path

import torch

aten = torch.ops.aten

AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
"""Whether this torch build has oneDNN's linear operator (the CPU wheels do)."""

COUNTS = {"product_calls": 0, "graphs_passed": 0, "products_replaced": 0, "products_kept": 0}
"""What ran in this process: calls of the operator (whether their program was compiled here or came
from inductor's cache), graphs the pass saw, products it replaced in them and float32 CPU products of
the size it takes that it left to torch (a form it does not know: ``KEPT_TARGETS``)."""

REPLACED = (aten.mm.default, aten.addmm.default)
"""The product operators the pass replaces."""

KEPT_TARGETS: collections.Counter = collections.Counter()
"""How many products of each operator the pass left though large enough (for the fast path's warning)."""

PRODUCTS = ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "addmv", "mv")
"""aten operators that are matrix products: a large float32 CPU one the pass did not replace is
counted as kept."""


@torch.library.custom_op("truncback::onednn_mm", mutates_args=())
def onednn_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for 2-D float32 CPU tensors by oneDNN's linear operator (a @ weight^T with weight = b^T)."""
    if 0 in a.shape or 0 in b.shape or 0 in a.stride() or 0 in b.stride():  # oneDNN wants real memory
        return torch.mm(a, b)
    COUNTS["product_calls"] += 1
    return torch.ops.mkldnn._linear_pointwise(a, b.t(), None, "none", [None], "")


@onednn_mm.register_fake
def _(a, b):
    return a.new_empty(a.shape[0], b.shape[1])


MIN_MULTIPLY_ADDS = 2**24
"""Products of m x k by k x n with m k n below this keep torch's kernel. Measured here (AMD EPYC, 1
and 2 threads, torch's time / oneDNN's through this operator): at 25 x 392 x 5 torch's takes 17 us and
the operator 48 us; 300 x 512 x 100 (15 million, CIFAR-100's logits) 0.53-0.93, torch's faster; from
2^24 on, 0.91-2.6 (below 1 only at 2000 x 512 x 40-100; 5000 x 785 x 10, hypercleaning's: 2.4-2.6)."""


def large_enough(multiply_adds: int) -> bool:
    """Whether a float32 CPU product of ``multiply_adds`` (m k n) goes to oneDNN: from ``MIN_MULTIPLY_ADDS`` on."""
    return multiply_adds >= MIN_MULTIPLY_ADDS


def _is_float32_cpu_matrix(node) -> bool:
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return (
        isinstance(value, torch.Tensor)
        and value.dim() == 2
        and value.dtype == torch.float32
        and value.device.type == "cpu"
    )


def replace_products(graph: torch.fx.Graph) -> tuple[int, int]:
    """mm(a, b) -> onednn_mm(a, b) and addmm(c, a, b) -> c + onednn_mm(a, b) in ``graph`` wherever a, b
    and the result are 2-D float32 CPU tensors and the product has at least ``MIN_MULTIPLY_ADDS``
    (addmm with alpha or beta other than 1 is left alone). Returns how many products it replaced and
    how many float32 CPU matrix products of at least that size it left (``PRODUCTS``: other forms, or
    mm/addmm with alpha or beta), their operators added to ``KEPT_TARGETS``."""
    replaced = kept = 0
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target not in REPLACED or node.kwargs:
            if _is_large_float32_cpu_product(node):
                kept += 1
                KEPT_TARGETS[str(node.target)] += 1
            continue
        if not all(map(_is_float32_cpu_matrix, (node, *node.args[-2:]))):
            continue
        (m, k), n = node.args[-2].meta["val"].shape, node.args[-1].meta["val"].shape[1]
        if not large_enough(m * k * n):
            continue
        with graph.inserting_before(node):
            product = graph.call_function(torch.ops.truncback.onednn_mm.default, tuple(node.args[-2:]))
            product.meta.update(node.meta)
            replacement = product
            if node.target is aten.addmm.default:
                replacement = graph.call_function(aten.add.Tensor, (node.args[0], product))
                replacement.meta.update(node.meta)
        node.replace_all_uses_with(replacement)
        graph.erase_node(node)
        replaced += 1
    return replaced, kept


def _is_large_float32_cpu_product(node) -> bool:
    """Whether ``node`` is an aten matrix product (``PRODUCTS``) with a float32 CPU result of at least
    ``MIN_MULTIPLY_ADDS`` multiply-adds (its result's size times the shared dimension of its last
    input, read from the shapes the graph carries)."""
    name = getattr(getattr(node.target, "overloadpacket", None), "__name__", "")
    value = node.meta.get("val")
    if name not in PRODUCTS or not isinstance(value, torch.Tensor):
        return False
    if value.dtype != torch.float32 or value.device.type != "cpu":
        return False
    last = node.args[-1].meta.get("val") if isinstance(node.args[-1], torch.fx.Node) else None
    shared = last.shape[-2] if isinstance(last, torch.Tensor) and last.dim() >= 2 and name != "linear" else None
    if name == "linear" and isinstance(node.args[1], torch.fx.Node):
        shared = node.args[1].meta["val"].shape[-1]
    return shared is not None and large_enough(value.numel() * shared)


@functools.cache
def graph_pass():
    """``replace_products`` as inductor's post-grad pass, its identity for inductor's compile cache being
    this file's contents. Made at first use: importing inductor takes a second or more, which jobs that
    never compile should not pay."""
    from torch._inductor.custom_graph_pass import CustomGraphPass

    class OneDNNProducts(CustomGraphPass):
        def __call__(self, graph: torch.fx.Graph) -> None:
            replaced, kept = replace_products(graph)
            COUNTS["graphs_passed"] += 1
            COUNTS["products_replaced"] += replaced
            COUNTS["products_kept"] += kept

        def uuid(self) -> bytes:
            return hashlib.sha256(Path(__file__).read_bytes()).digest()

    return OneDNNProducts()


def compile_options(matmul: str) -> dict:
    """Inductor options of a compiled step for the ``matmul`` choice (``problem.MATMULS``)."""
    return {"post_grad_custom_post_pass": graph_pass()} if matmul == "onednn" and AVAILABLE else {}
