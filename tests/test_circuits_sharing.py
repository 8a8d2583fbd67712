"""Repetition brackets say how weights are shared: one set, per-call pieces, or distinct weights per repetition."""
import torch
from torch import nn
from neuralcircuits import zoo
from neuralcircuits.circuits import diagram


class Looped(nn.Module):
    "One block applied three times: a single set of weights."
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(6, 6), nn.Tanh())
    def forward(self, x):
        for _ in range(3): x = self.block(x)
        return x


def test_a_loop_is_drawn_as_one_set_of_weights():
    dot = diagram(Looped(), torch.randn(2, 6)).dot
    assert 'same weights, called &#215;3' in dot and 'distinct weights' not in dot


def test_a_stack_is_drawn_as_distinct_weights():
    model, x = zoo.tiny('transformer', n_layers=3)
    dot = diagram(model, x).dot
    assert 'distinct weights' in dot and 'same weights' not in dot


def test_hyperloop_middle_shares_modules_but_not_its_connections():
    "Hyperloop's middle block is one set of layers, but each loop has its own hyper-connection weights."
    model, x = zoo.tiny('hyperloop')
    dot = diagram(model.eval(), x).dot
    assert 'shared modules, own weights' in dot and 'same weights, called' not in dot
