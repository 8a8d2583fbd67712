"Intermediate-form snapshots of the paper's figures: ops, contracted axes, softmax axis, residual adds, fold counts."
import html, re
import torch
from torch import nn
import torch.nn.functional as F
from neuralcircuits import zoo
from neuralcircuits.circuits import diagram, check_traceable
from neuralcircuits.blocks.mlp import MLP
from neuralcircuits.blocks.attention import Attention
from neuralcircuits.blocks.transformer import Block

torch.set_num_threads(1)

def facts(d):
    "The snapshot: (kind, contracted axes, axis acted on, residual) per op, reshapes and identity copies left out."
    return [(r['kind'], r.get('contract'), r.get('axis'), bool(r.get('residual')))
            for r in d.ops() if r['kind'] not in ('Rearrange', 'Copy')]

def test_mlp():
    d = diagram(MLP(16, 64), torch.randn(2, 5, 16), names='b t m', axes=dict(f=64))
    assert facts(d) == [('Linear', ['m'], None, False), ('Elementwise', None, None, False), ('Linear', ['f'], None, False)]

def test_sdpa_explicit():
    from neuralcircuits.axes import einsum
    class SDPA(nn.Module):
        def forward(self, q, k, v):
            s = einsum(q, k, 'b h t k, b h s k -> b h t s') * q.shape[-1] ** -0.5
            return einsum(s.softmax(-1), v, 'b h t s, b h s k -> b h t k')
    q, k = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8)
    d = diagram(SDPA(), (q, k, k.clone()), names=('b h t k', 'b h s k', 'b h s k'))
    assert facts(d) == [('Contraction', ['k'], None, False), ('Elementwise', None, None, False),
                        ('Softmax', None, 's', False), ('Contraction', ['s'], None, False)]

def test_sdpa_fused_drawn_as_its_steps():
    class SDPA(nn.Module):
        def forward(self, q, k, v): return F.scaled_dot_product_attention(q, k, v)
    q, k = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8)
    d = diagram(SDPA(), (q, k, k.clone()), names=('b h t k', 'b h s k', 'b h s k'))
    assert facts(d) == [('Attention', ['k', 's'], 's', False)]
    assert 'contract k' in d.dot and 'softmax over s' in d.dot and 'contract s' in d.dot
    assert d.dot.count('STYLE="dashed"') >= 2           # Q | K | V drawn as a tuple

def test_multi_head_attention():
    d = diagram(Attention(48, 3), torch.randn(2, 12, 48), names='b t m')
    assert facts(d) == [('Linear', ['m'], None, False), ('Index', None, '144', False),
                        ('Attention', ['k', 's'], 's', False), ('Linear', ['(h k)'], None, False)]
    assert [r['outs'] for r in d.ops() if r['kind'] == 'Attention'] == [['b h t k']]

def test_transformer_block():
    cfg = zoo.entry('transformer').tiny
    d = diagram(Block(cfg), torch.randn(2, 12, cfg.d_model), names='b t m')
    f = facts(d)
    assert [x for x in f if x[0] == 'Normalize'] == [('Normalize', None, 'm', False)] * 2
    assert [x for x in f if x[0] == 'Add'] == [('Add', None, None, True)] * 2
    assert [r['path'] for r in d.ops() if r.get('residual')] == ['attn', 'mlp']

def test_transformer_model_12_layers_folds():
    model, tokens = zoo.tiny('transformer', n_layers=12)
    d = check_traceable(model, tokens)
    assert [(b.cls, b.count, b.shared) for b in d.tree.blocks() if b.count > 1] == [('Block', 12, False)]
    assert sum(1 for o in d.ir.ops if o.attrs.get('residual')) == 24
    assert 'Block ) &#215;12' in d.dot

def test_vit():
    model, images = zoo.tiny('vit')
    d = check_traceable(model, images)
    assert [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1] == [('Block', model.cfg.n_layers)]
    assert any(r['kind'] == 'Concat' for r in d.ops())

def test_identity_resnet_block():
    class PreAct(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2, self.conv2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False)
        def forward(self, x): return x + self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
    d = diagram(nn.Sequential(*[PreAct() for _ in range(3)]).eval(), torch.randn(2, 8, 6, 6), names='b c y x')
    assert [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1][0] == ('PreAct', 3)
    assert [x for x in facts(d) if x[0] == 'Normalize'][:2] == [('Normalize', None, 'c', False)] * 2
    assert sum(1 for o in d.ir.ops if o.attrs.get('residual')) == 3

def test_unet_skip_concat():
    class UNet(nn.Module):
        def __init__(self, c=3, w=8):
            super().__init__()
            self.enc, self.mid = nn.Conv2d(c, w, 3, padding=1), nn.Conv2d(w, 2 * w, 3, padding=1)
            self.up, self.dec = nn.ConvTranspose2d(2 * w, w, 2, stride=2), nn.Conv2d(2 * w, c, 1)
        def forward(self, x):
            e = F.relu(self.enc(x))
            return self.dec(torch.cat([e, self.up(F.relu(self.mid(F.max_pool2d(e, 2))))], 1))
    d = diagram(UNet(), torch.randn(2, 3, 8, 8), names='b c y x')
    cat = [r for r in d.ops() if r['kind'] == 'Concat'][0]
    assert cat['ins'] == ['b 8 y x', 'b 8 y x'] and cat['outs'] == ['b 16 y x']   # the concat needs one y x grid: the upsampled branch is named back from it
    assert d.ops()[-1]['outs'] == ['b c y x']


def test_a_pruned_stack_folds_and_says_what_each_copy_kept():
    "OPTIN's blocks differ only in widths (heads 4, 4, 3; MLP 91, 43, 18): one bracket whose label lists the widths, and each copy's parameters in its tip."
    model, x = zoo.tiny('optin')
    top = diagram(model, x).figures[0].svg
    texts = [html.unescape(re.sub('<[^>]+>', '', t)) for t in re.findall(r'<text[^>]*>(.*?)</text>', top, re.S)]
    assert '( SlimBlock ) ×3' in texts
    assert {'branch.n_heads = 4, 4, 3', 'up.out_features = 91, 43, 18'} <= set(texts)
    counts = ', '.join(f"{sum(p.numel() for p in b.parameters()):,}" for b in model.blocks)
    assert any(f"{counts} parameters" in html.unescape(t) for t in re.findall(r'<title>(.*?)</title>', top, re.S))
    inception, y = zoo.tiny('inception_resnet')   # convs of other kernel sizes never fold together; strides that differ are said
    svg = ''.join(f.svg for f in diagram(inception, y).figures)
    assert '0.stride = (2, 2), (1, 1), (1, 1)' in html.unescape(svg)
