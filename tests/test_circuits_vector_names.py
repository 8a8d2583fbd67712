"""Axis names survive a contraction with a vector (a pseudo-query reading over depth, as in Attention Residuals)."""
import torch
from torch import nn
from neuralcircuits.circuits import diagram


class DepthRead(nn.Module):
    "Softmax over the source axis of w . v_l, the read of Attention Residuals without its norm."
    def __init__(self, d: int = 8):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d))
    def forward(self, v): return (v @ self.w).softmax(0)


def test_matrix_times_vector_keeps_the_other_names():
    d = diagram(DepthRead(), torch.randn(3, 2, 5, 8), names='l b t m')
    softmax = next(op for op in d.ir.ops if op.kind == 'Softmax')
    assert d.ir.values[softmax.inputs[0]].labels == ('l', 'b', 't')
    assert 'softmax over l' in d.dot


def test_vector_times_matrix_keeps_the_other_names():
    class Pool(nn.Module):
        def __init__(self): super().__init__(); self.w = nn.Parameter(torch.randn(5))
        def forward(self, x): return self.w @ x      # (t,) @ (b, t, m) -> (b, m)
    d = diagram(Pool(), torch.randn(2, 5, 8), names='b t m')
    assert d.ir.values[d.ir.ops[-1].outputs[0]].labels == ('b', 'm')
