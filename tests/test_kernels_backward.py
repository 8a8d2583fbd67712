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
    model, x = zoo.tiny('mamba')
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
