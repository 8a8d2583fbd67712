"""The backward passes of Kernels II against their torch references on CPU (Triton interpreter, fp32, tiny shapes).

Tolerances, relative (||ours - ref|| / ||ref||): 1e-5 on outputs, 1e-4 on gradients. The kernels sum in blocks
(online softmax, per-chunk scans, a tree-shaped associative scan, partial sums over channel blocks) where the
references sum in one pass; in fp32 that reorders roundings at the 1e-7 level per operation, amplified by a few
chained products. A structural error (a block left unmasked that needed a mask, a group head missed, a state not
carried between chunks) shows up at 1e-2 or worse.
"""
import os, sys
import torch
if 'triton' not in sys.modules: os.environ.setdefault('TRITON_INTERPRET', '1')   # Triton on CPU tensors
import pytest
import torch.nn.functional as F
from neuralcircuits.kernels import attention, attention_reference, lengths_to_cu_seqlens

pytestmark = pytest.mark.skipif(os.environ.get('TRITON_INTERPRET') != '1',
                                reason='triton was imported before TRITON_INTERPRET=1 was set')

def close(a, b, eps):
    err = ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()
    assert err < eps, f"relative error {err:.2e} >= {eps:.0e}"

def outputs_and_grads(fn, inputs, seed=0):
    "Outputs of fn and the gradients of a fixed random projection of them, for every floating input."
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs).backward()
    return [o.detach() for o in outs], [x.grad for x in inputs if x.grad is not None]

def compare(fn_tri, fn_ref, inputs, eps_out=1e-5, eps_grad=1e-4):
    (o_t, g_t), (o_r, g_r) = outputs_and_grads(fn_tri, inputs), outputs_and_grads(fn_ref, inputs)
    assert len(g_t) == len(g_r)
    for a, b in zip(o_t, o_r): close(a, b, eps_out)
    for a, b in zip(g_t, g_r): close(a, b, eps_grad)

# Attention: the dK/dV program loops over the group's query heads; only blocks crossing the diagonal (causal) or the
# sequence end are masked. Lengths 1, 5, 16 (one 16-row tile exactly), 33 (two tiles and one row) and t = 37 exercise
# every kind of block: whole, diagonal, straddling the end, past the end.
@pytest.mark.parametrize('causal', [True, False])
@pytest.mark.parametrize('group', [1, 2, 4])
def test_attention_padded_backward(causal, group):
    h_kv, d = 2, 16
    g = torch.Generator().manual_seed(group)
    q = torch.randn(2, 37, h_kv * group, d, generator=g)
    k, v = torch.randn(2, 37, h_kv, d, generator=g), torch.randn(2, 37, h_kv, d, generator=g)
    compare(lambda q, k, v: attention(q, k, v, causal=causal, backend='triton'),
            lambda q, k, v: attention_reference(q, k, v, causal=causal), [q, k, v])

@pytest.mark.parametrize('causal', [True, False])
@pytest.mark.parametrize('group', [1, 2, 4])
def test_attention_varlen_backward(causal, group):
    cu = lengths_to_cu_seqlens([5, 33, 1, 16])
    n, d = int(cu[-1]), 12                       # d = 12: masked inside the 16-wide tile
    g = torch.Generator().manual_seed(10 + group)
    q, k, v = torch.randn(n, group, d, generator=g), torch.randn(n, 1, d, generator=g), torch.randn(n, 1, d, generator=g)
    compare(lambda q, k, v: attention(q, k, v, cu, causal=causal, max_seqlen=33, backend='triton'),
            lambda q, k, v: attention_reference(q, k, v, cu, causal=causal), [q, k, v])

def test_attention_gqa_gradient_is_the_group_sum():
    "dK of a shared head equals the sum of the dK of the same head repeated for each query head (no group head lost)."
    g = torch.Generator().manual_seed(7)
    q, k, v = torch.randn(1, 20, 4, 16, generator=g), torch.randn(1, 20, 1, 16, generator=g), torch.randn(1, 20, 1, 16, generator=g)
    _, (_, dk_shared, dv_shared) = outputs_and_grads(lambda q, k, v: attention(q, k, v, backend='triton'), [q, k, v])
    _, (_, dk_rep, dv_rep) = outputs_and_grads(lambda q, k, v: attention(q, k, v, backend='triton'),
                                               [q, k.repeat_interleave(4, 2), v.repeat_interleave(4, 2)])
    close(dk_shared, dk_rep.sum(2, keepdim=True), 1e-5); close(dv_shared, dv_rep.sum(2, keepdim=True), 1e-5)

# The selective scan (Mamba-1): chunks of 16 and channel blocks of 8 under the interpreter; t = 37, e = 12 and n = 3
# leave a partial chunk, a partial channel block and a padded state axis.
from neuralcircuits.kernels import selective_scan, selective_scan_reference

def scan_inputs(b, e, t, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, e, t, generator=g), F.softplus(torch.randn(b, e, t, generator=g)), -torch.rand(e, n, generator=g) * 4,
            torch.randn(b, t, n, generator=g), torch.randn(b, t, n, generator=g), torch.randn(b, e, n, generator=g)]

@pytest.mark.parametrize('b,e,t,n,with_state', [(2, 12, 37, 3, True), (1, 8, 16, 16, False), (1, 5, 3, 1, True)])
def test_selective_scan_equals_the_recurrence(b, e, t, n, with_state):
    inputs = scan_inputs(b, e, t, n)[:6 if with_state else 5]
    compare(lambda *a: selective_scan(*a, backend='triton'), selective_scan_reference, inputs)

def test_selective_scan_state_carries_across_calls():
    "Two pieces with the state handed over equal the whole sequence (decoding after a prefill)."
    u, delta, A, B, C, _ = scan_inputs(1, 8, 40, 4, seed=3)
    y, h = selective_scan(u, delta, A, B, C, backend='triton')
    y1, h1 = selective_scan(u[..., :23], delta[..., :23], A, B[:, :23], C[:, :23], backend='triton')
    y2, h2 = selective_scan(u[..., 23:], delta[..., 23:], A, B[:, 23:], C[:, 23:], h1, backend='triton')
    close(torch.cat([y1, y2], -1), y, 1e-5); close(h2, h, 1e-5)

def test_mamba_with_the_kernel_equals_its_chunked_form():
    "The zoo's mamba entry with form='kernel' (Triton forced): the logits and parameter gradients of the chunked torch form."
    import neuralcircuits.kernels as K
    from neuralcircuits import zoo
    from neuralcircuits.zoo.mixers.mamba import MambaMixer
    model, x = zoo.tiny('mamba', n_layers=1, d_model=16)    # e = 32 channels: 4 blocks of 8, 24 tokens: 2 chunks
    def run(form):
        MambaMixer.form = form
        try:
            model.zero_grad(); logits = model(x); logits.pow(2).mean().backward()
            return logits.detach(), [p.grad.clone() for p in model.parameters()]
        finally: MambaMixer.form = 'chunked'
    with K.use('triton'): (l_ker, g_ker) = run('kernel')
    l_chk, g_chk = run('chunked')
    close(l_ker, l_chk, 1e-5)
    for a, b in zip(g_ker, g_chk): close(a, b, 1e-4)

# Padding-free end to end: the packed LM's forward and backward read nothing back from the device.
import contextlib
from unittest import mock

READ_BACKS = ('item', 'tolist', 'cpu', 'numpy', '__bool__', '__int__', '__float__', '__index__')

@contextlib.contextmanager
def reads_back_from_tensors():
    "Record every call, from our own code, of a Tensor method that copies a value to the host (a device sync on a GPU)."
    calls = []
    def spy(method):
        original = getattr(torch.Tensor, method)
        def wrapped(self, *args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_globals.get('__name__', '').startswith('neuralcircuits'):
                calls.append(f"{method} in {caller.f_globals['__name__']}:{caller.f_lineno}")
            return original(self, *args, **kwargs)
        return mock.patch.object(torch.Tensor, method, wrapped)
    with contextlib.ExitStack() as stack:
        for method in READ_BACKS: stack.enter_context(spy(method))
        yield calls

def test_the_spy_sees_a_read_back():
    "The check can fail: our code reading a tensor's values is recorded."
    from neuralcircuits.kernels import check_cu_seqlens
    with reads_back_from_tensors() as calls: check_cu_seqlens(torch.tensor([0, 3]), 3)
    assert calls and calls[0].startswith('tolist in neuralcircuits.kernels.flash')

def test_packed_lm_forward_and_backward_never_read_back():
    "With the indices made once per batch (`pack`), forward_packed and its backward read no tensor value back, and every layer gets the same cu_seqlens."
    import neuralcircuits.kernels as K
    import neuralcircuits.zoo.mixers.varlen as varlen
    from neuralcircuits import zoo
    model, _ = zoo.tiny('varlen')
    lengths, t = [7, 20, 2, 13], 20
    tokens = torch.randint(61, (4, t), generator=torch.Generator().manual_seed(1))
    packing = varlen.pack(lengths, t)                     # once per batch, from host lengths
    packed_tokens = tokens.flatten()[packing.rows]         # as a data loader that packs would give them
    seen = []
    def attention(*args, **kwargs):
        seen.append((id(args[3]), kwargs['max_seqlen']))
        return K.attention(*args, **kwargs)
    with K.use('triton'), mock.patch.object(varlen, 'attention', attention), reads_back_from_tensors() as calls:
        logits = model.forward_packed(packed_tokens, packing)
        logits.pow(2).mean().backward()
    assert calls == []
    assert seen == [(id(packing.cu_seqlens), 20)] * model.cfg.n_layers
    # and the values are the padded baseline's on real tokens (fp32, 1e-5: two summation orders)
    from neuralcircuits.blocks import TransformerLM
    base = TransformerLM(model.cfg); base.load_state_dict(model.state_dict())
    real = torch.arange(t) < torch.tensor(lengths)[:, None]
    close(logits.detach(), base(tokens)[real].detach(), 1e-5)

# The delta rule's backward (timed against fla's on a GPU by `nc bench kernels`): gradients vs the recurrence.
from neuralcircuits.kernels import delta_rule, delta_rule_recurrent

@pytest.mark.parametrize('t,dk,dv,with_state', [(150, 20, 24, False), (64, 16, 16, True)])
def test_delta_rule_backward_equals_the_recurrence(t, dk, dv, with_state):
    "Two chunks and a partial one, head sizes that are not powers of two; a loss on the outputs and on the final state."
    g = torch.Generator().manual_seed(t)
    q, k = torch.randn(1, 2, t, dk, generator=g), F.normalize(torch.randn(1, 2, t, dk, generator=g), dim=-1)
    v, beta = torch.randn(1, 2, t, dv, generator=g), torch.rand(1, 2, t, generator=g)
    inputs = [q, k, v, beta] + ([torch.randn(1, 2, dk, dv, generator=g)] if with_state else [])
    compare(lambda *a: delta_rule(*a, backend='triton'), delta_rule_recurrent, inputs)

# The GPU sweep (`tune_tiles`) may pick tiles whose query and key blocks differ; the block logic (which blocks cross
# the diagonal, where the sequence ends, how chunks hand the state over) must hold for them too.
@pytest.mark.parametrize('tiles', [dict(forward=(16, 32), dkdv=(16, 32), dq=(32, 16)), dict(forward=(32, 16), dkdv=(32, 16), dq=(16, 32))])
@pytest.mark.parametrize('causal', [True, False])
def test_attention_with_unequal_tiles(monkeypatch, tiles, causal):
    import neuralcircuits.kernels.triton_flash as tf
    monkeypatch.setattr(tf, '_blocks', lambda q, which='forward': (dict(BM=tiles[which][0], BN=tiles[which][1]), {}))
    cu = lengths_to_cu_seqlens([5, 40, 1])                     # 40: one 32-block and a part
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(46, 2, 16, generator=g), torch.randn(46, 1, 16, generator=g), torch.randn(46, 1, 16, generator=g)
    compare(lambda q, k, v: attention(q, k, v, cu, causal=causal, max_seqlen=40, backend='triton'),
            lambda q, k, v: attention_reference(q, k, v, cu, causal=causal), [q, k, v])

@pytest.mark.parametrize('bt,be', [(8, 16), (32, 4)])
def test_selective_scan_with_other_tiles(monkeypatch, bt, be):
    import neuralcircuits.kernels.triton_scan as ts
    monkeypatch.setattr(ts, '_blocks', lambda u, n: (dict(BT=bt, BE=be, BN=max(2, 1 << (n - 1).bit_length())), {}))
    compare(lambda *a: selective_scan(*a, backend='triton'), selective_scan_reference, scan_inputs(1, 12, 37, 3, seed=4))
