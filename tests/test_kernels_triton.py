"""Every Triton kernel against its torch reference on CPU (Triton interpreter, fp32, small shapes).

Tolerances: 1e-5 relative on outputs and 1e-4 on gradients. The kernels sum in blocks (online softmax, chunked
state updates, tree reductions) where the references sum in one pass; in fp32 that reorders roundings at the
1e-7 level per operation, amplified by at most a few chained products. Anything structural (a wrong mask, a
missing rescale) shows up at 1e-1.
"""
import os, sys
import torch
if 'triton' not in sys.modules: os.environ.setdefault('TRITON_INTERPRET', '1')   # Triton on CPU tensors, also on GPU machines
import pytest
import torch.nn.functional as F
import neuralcircuits.kernels as K
from neuralcircuits.kernels import (rms_norm, delta_rule, delta_rule_recurrent, delta_rule_chunked, attention,
                                    attention_reference, lengths_to_cu_seqlens, depth_attention, sinkhorn)

pytestmark = pytest.mark.skipif(os.environ.get('TRITON_INTERPRET') != '1',
                                reason='triton was imported before TRITON_INTERPRET=1 was set')

def close(a, b, eps):
    err = ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
    assert err < eps, f"relative error {err:.2e} >= {eps:.0e}"

def outputs_and_grads(fn, inputs, seed=0):
    "Outputs of fn and the gradients of a fixed random projection of them, for every input."
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs).backward()
    return [o.detach() for o in outs], [x.grad for x in inputs]

def compare(fn_tri, fn_ref, inputs, eps_out=1e-5, eps_grad=1e-4):
    (o_t, g_t), (o_r, g_r) = outputs_and_grads(fn_tri, inputs), outputs_and_grads(fn_ref, inputs)
    for a, b in zip(o_t, o_r): close(a, b, eps_out)
    for a, b in zip(g_t, g_r): close(a, b, eps_grad)

@pytest.mark.parametrize('shape', [(5, 16), (3, 4, 33), (1, 130)])
def test_rms_norm(shape):
    x, w = torch.randn(*shape), torch.rand(shape[-1]) + 0.5
    compare(lambda x, w: rms_norm(x, w, backend='triton'), lambda x, w: rms_norm(x, w, backend='torch'), [x, w])

def delta_inputs(b, h, t, dk, dv, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(b, h, t, dk, generator=g), F.normalize(torch.randn(b, h, t, dk, generator=g), dim=-1)
    return q, k, torch.randn(b, h, t, dv, generator=g), torch.rand(b, h, t, generator=g), torch.randn(b, h, dk, dv, generator=g)

@pytest.mark.parametrize('t,chunk', [(16, 16), (64, 32), (150, 64)])
def test_delta_rule_three_forms_agree(t, chunk):
    "Shorter than the kernels' chunk of 64, exactly one chunk, two chunks and a partial one."
    q, k, v, beta, S0 = delta_inputs(1, 2, t, 16, 32)
    o_rec, S_rec = delta_rule_recurrent(q, k, v, beta, S0)
    o_chk, S_chk = delta_rule_chunked(q, k, v, beta, S0, chunk_size=chunk)
    o_tri, S_tri = delta_rule(q, k, v, beta, S0, backend='triton')
    for o, S in ((o_chk, S_chk), (o_tri, S_tri)): close(o, o_rec, 1e-5); close(S, S_rec, 1e-5)

def test_delta_rule_grads_with_state():
    q, k, v, beta, S0 = delta_inputs(1, 2, 100, 32, 16, seed=1)
    compare(lambda *a: delta_rule(*a, backend='triton'), delta_rule_recurrent, [q, k, v, beta, S0])

def test_delta_rule_state_carries_across_calls():
    "Two halves with the state handed over equal the whole sequence (the recurrent mode of a chunked model)."
    q, k, v, beta, _ = delta_inputs(1, 2, 100, 16, 16, seed=2)
    o_all, S_all = delta_rule(q, k, v, beta, backend='triton')
    o1, S1 = delta_rule(q[:, :, :70], k[:, :, :70], v[:, :, :70], beta[:, :, :70], backend='triton')
    o2, S2 = delta_rule(q[:, :, 70:], k[:, :, 70:], v[:, :, 70:], beta[:, :, 70:], S1, backend='triton')
    close(torch.cat([o1, o2], 2), o_all, 1e-5); close(S2, S_all, 1e-5)

@pytest.mark.parametrize('causal,h,h_kv,d', [(True, 2, 2, 16), (True, 4, 1, 32), (False, 3, 1, 20), (True, 6, 2, 20)])
def test_attention_padded(causal, h, h_kv, d):
    g = torch.Generator().manual_seed(h * d)
    q, k, v = torch.randn(2, 19, h, d, generator=g), torch.randn(2, 19, h_kv, d, generator=g), torch.randn(2, 19, h_kv, d, generator=g)
    compare(lambda q, k, v: attention(q, k, v, causal=causal, backend='triton'),
            lambda q, k, v: attention_reference(q, k, v, causal=causal), [q, k, v])

def test_attention_packed_equals_padded_on_real_tokens():
    "Right-padded batch through the padded reference vs the packed Triton kernel: equal on real tokens."
    lengths, t, h, d = [3, 17, 1, 9], 17, 2, 16
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(len(lengths), t, h, d, generator=g) for _ in range(3))
    real = torch.arange(t) < torch.tensor(lengths)[:, None]
    padded = attention_reference(q, k, v)
    packed = attention(q[real], k[real], v[real], lengths_to_cu_seqlens(lengths), backend='triton')
    close(packed, padded[real], 1e-5)

def test_attention_packed_grads():
    cu = lengths_to_cu_seqlens([16, 2, 33])
    g = torch.Generator().manual_seed(4)
    q, k, v = torch.randn(51, 4, 16, generator=g), torch.randn(51, 2, 16, generator=g), torch.randn(51, 2, 16, generator=g)
    compare(lambda q, k, v: attention(q, k, v, cu, backend='triton'), lambda q, k, v: attention_reference(q, k, v, cu), [q, k, v])

@pytest.mark.parametrize('n,d', [(1, 16), (5, 40)])
def test_depth_attention(n, d):
    g = torch.Generator().manual_seed(n)
    values, query = torch.randn(n, 2, 9, d, generator=g), torch.randn(d, generator=g)
    compare(lambda v, w: depth_attention(v, w, backend='triton'), lambda v, w: depth_attention(v, w, backend='torch'), [values, query])

@pytest.mark.parametrize('shape', [(10, 2, 2), (3, 7, 4, 4), (2, 9, 9)])
def test_sinkhorn(shape):
    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(5)) * 2
    compare(lambda x: sinkhorn(x, 10, backend='triton'), lambda x: sinkhorn(x, 10, backend='torch'), [logits])

def test_auto_dispatch_on_cpu_uses_the_reference():
    x = torch.randn(3, 8)
    with K.use('auto'): y = rms_norm(x, torch.ones(8))
    assert torch.equal(y, K.rms_norm_reference(x, torch.ones(8)))

@pytest.mark.parametrize('kernel', ['rms_norm', 'attention', 'delta_rule'])
def test_tensors_past_32_bit_offsets_are_refused(kernel):
    "Shapes on the meta device: nothing is allocated, the launcher refuses before any kernel runs."
    meta = lambda *shape: torch.empty(*shape, device='meta')
    call = {'rms_norm': lambda: rms_norm(meta(2 ** 25, 64), meta(64), backend='triton'),
            'attention': lambda: attention(meta(2 ** 20, 32, 64), meta(2 ** 20, 8, 64), meta(2 ** 20, 8, 64),
                                           torch.tensor([0, 2 ** 20]), max_seqlen=2 ** 20, backend='triton'),
            'delta_rule': lambda: delta_rule(meta(4, 32, 2 ** 18, 64), meta(4, 32, 2 ** 18, 64), meta(4, 32, 2 ** 18, 64),
                                             meta(4, 32, 2 ** 18), backend='triton')}[kernel]
    with pytest.raises(ValueError, match='index with 32-bit offsets and take fewer than 2\\*\\*31'): call()
