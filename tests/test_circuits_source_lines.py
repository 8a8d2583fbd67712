"Every recorded op points at the line of model code that issued it: file, line number and the line itself."
import inspect, os
import torch
from torch import nn
import torch.nn.functional as F
import neuralcircuits
from neuralcircuits import zoo, axes as ncaxes
from neuralcircuits.circuits import diagram

torch.set_num_threads(1)

def line_at(file: str, line: int) -> str:
    with open(file) as f: return f.read().splitlines()[line - 1].strip()

def span(obj) -> tuple[str, range]:
    "The file and the line numbers of a function's or class's source."
    lines, start = inspect.getsourcelines(obj)
    return os.path.abspath(inspect.getsourcefile(obj)), range(start, start + len(lines))

def module_at(model: nn.Module, path: str) -> list[nn.Module]:
    "The module at `path` and all its ancestors, innermost first."
    parts = path.split('.') if path else []
    return [model.get_submodule('.'.join(parts[:i])) for i in range(len(parts), -1, -1)]

def test_baseline_ops_point_at_their_module_code():
    model, x = zoo.tiny('transformer')
    d = diagram(model, x)
    inside_forward = 0
    for op, row in zip(d.ir.ops, d.ops()):
        file, line, code = op.src
        assert (row['file'], row['line'], row['code']) == op.src
        assert os.path.isabs(file) and code == line_at(file, line), (op, op.src)
        mods = module_at(model, d.ir.calls[op.call].path)
        forwards = [span(type(m).forward) for m in mods]
        # a forward may hand work to a method of its class (embed_tokens, attend) or a function of its file (check_tokens)
        helpers = [span(type(m)) for m in mods] + [span(f) for m in mods for _, f in inspect.getmembers(inspect.getmodule(type(m)), inspect.isfunction)
                                                   if f.__module__ == type(m).__module__]
        assert any(file == f and line in r for f, r in forwards + helpers), (op, op.src)
        inside_forward += any(file == f and line in r for f, r in forwards)
    assert inside_forward >= 0.8 * len(d.ir.ops)        # most ops are issued by a forward itself
    # the linear map of `self.qkv(x)` points at the attention's forward, not at nn.Linear
    qkv = next(op for op in d.ir.ops if d.ir.calls[op.call].path == 'blocks.0.attn.branch.qkv')
    from neuralcircuits.blocks.attention import Attention
    file, r = span(Attention.forward)
    assert qkv.src[0] == file and qkv.src[1] in r
    assert qkv.src[2] == 'q, key, v = self.qkv(x).split((h * k, g * k, g * k), dim=-1)'

def test_no_line_inside_torch_or_the_engine():
    model, x = zoo.tiny('mhc')
    skip = (os.path.dirname(torch.__file__), os.path.join(os.path.dirname(neuralcircuits.__file__), 'circuits'), ncaxes.__file__)
    for op in diagram(model, x).ir.ops:
        assert op.src is not None and not op.src[0].startswith(skip), op.src

class Attention(nn.Module):
    def __init__(self, m=16):
        super().__init__(); self.q, self.k = nn.Linear(m, m), nn.Linear(m, m)
    def forward(self, x):
        q = self.q(x)
        k = ncaxes.rearrange(self.k(x), 'b t m -> b m t')
        return F.softmax(q @ k, dim=-1)

def test_module_call_functional_op_and_einops_wrapper():
    ops = diagram(Attention(), torch.randn(2, 5, 16)).ops()
    by_op = {}
    for r in ops: by_op.setdefault(r['op'], r['code'])
    assert by_op['linear'] == 'q = self.q(x)'                                     # the line that called nn.Linear
    assert by_op['permute'] == "k = ncaxes.rearrange(self.k(x), 'b t m -> b m t')"  # einops and our wrapper are skipped
    assert by_op['softmax'] == 'return F.softmax(q @ k, dim=-1)'                  # a functional op: its own line
    assert all(r['file'] == os.path.abspath(__file__) for r in ops)
