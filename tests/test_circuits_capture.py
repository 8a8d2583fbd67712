"Capture: bit-identical outputs, complete replay, global state restored, errors that name the module and shapes."
import pytest, torch
from torch import nn
import torch.nn.functional as F
from neuralcircuits import axes as ncaxes
from neuralcircuits.circuits import diagram, capture, replay, same, CaptureError, check_traceable

torch.set_num_threads(1)

class Net(nn.Module):
    def __init__(self, m=16):
        super().__init__()
        self.norm, self.up, self.down, self.drop = nn.LayerNorm(m), nn.Linear(m, 4 * m), nn.Linear(4 * m, m), nn.Dropout(0.2)
    def forward(self, x):
        h = self.up(self.norm(x))
        h[..., 0] = 0                       # an in-place write: the record versions the tensor
        h.mul_(2)
        return x + self.drop(self.down(F.gelu(h))), h.amax(-1)

def untouched(m: nn.Module) -> bool:
    hooks = any(mod._forward_hooks or mod._forward_pre_hooks for mod in m.modules())
    return not hooks and not torch.overrides._is_torch_function_mode_enabled() and ncaxes._tags is None

@pytest.mark.parametrize('train', [False, True])
def test_bit_identical_and_replay(train):
    m, x = Net().train(train), torch.randn(2, 5, 16)
    torch.manual_seed(3); plain = m(x)
    torch.manual_seed(3); T = capture(m, x)
    assert same(T.output, plain)
    assert same(replay(T, x), plain)               # every op that ran is in the record
    assert untouched(m)

def test_setitem_and_inplace_recorded():
    T = capture(Net().eval(), torch.randn(2, 5, 16))
    names = [o.name for o in T.ops]
    assert '__setitem__' in names and 'mul_' in names

def test_failure_names_module_and_shapes_and_restores_state():
    m = Net()
    with pytest.raises(CaptureError, match=r"module 'norm' \(LayerNorm\), called with inputs of shapes \(2, 5, 8\)"):
        capture(m, torch.randn(2, 5, 8))
    assert untouched(m)

def test_failure_nested_path():
    model = nn.Sequential(nn.Linear(4, 8), nn.Sequential(nn.ReLU(), nn.Linear(7, 2)))
    with pytest.raises(CaptureError, match=r"module '1.1' \(Linear\), called with inputs of shapes \(3, 8\)"):
        diagram(model, torch.randn(3, 4))
    assert untouched(model)

def test_not_a_module():
    with pytest.raises(TypeError, match='model must be a torch.nn.Module, got function'):
        diagram(lambda x: x, torch.randn(2))

def test_rejected_input_type():
    with pytest.raises(CaptureError, match=r"module 'norm' \(LayerNorm\), called with inputs of shapes str"):
        diagram(Net(), "not a tensor")

def test_torch_tensor_still_works_after_capture():
    capture(Net(), torch.randn(2, 5, 16))
    assert torch.equal(torch.tensor([1.0, 2.0]) * 2, torch.tensor([2.0, 4.0]))   # torchvista's issue 38 cannot happen

def test_check_traceable_catches_mode_dependent_model():
    class Sneaky(nn.Module):
        def forward(self, x): return x + (1 if torch.overrides._is_torch_function_mode_enabled() else 0)
    with pytest.raises(AssertionError, match='output under capture differs'):
        check_traceable(Sneaky(), torch.randn(3))

def test_save_formats(tmp_path):
    d = diagram(Net().eval(), torch.randn(2, 5, 16), names='b t m')
    for ext in ('svg', 'png', 'pdf'):
        p = d.save(tmp_path / f'net.{ext}')
        assert p.stat().st_size > 500
    assert d.svg.lstrip().startswith('<?xml') and '<svg' in d._repr_html_()
    with pytest.raises(ValueError, match="path must end in .svg, .png or .pdf, got 'net.jpg'"):
        d.save(tmp_path / 'net.jpg')

def test_names_argument_checked():
    with pytest.raises(ValueError, match="names 'b t' has 2 axes but input x has shape"):
        diagram(Net(), torch.randn(2, 5, 16), names='b t')
