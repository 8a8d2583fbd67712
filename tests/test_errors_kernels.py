"""Wrong calls to the kernels, on both backends: the torch and the Triton path refuse the same inputs with the same
message (checked at the entry, before either runs), and accept the same dtype mixes (the rule in `kernels.check_inputs`).
Triton runs under TRITON_INTERPRET=1 on CPU here, so the inputs are tiny."""
import importlib.util, os
import pytest, torch
from neuralcircuits import kernels as K
from neuralcircuits.kernels.deltarule import delta_rule_chunked, delta_rule_recurrent

HAS_TRITON = importlib.util.find_spec('triton') is not None and (torch.cuda.is_available() or os.environ.get('TRITON_INTERPRET') == '1')
BACKENDS = ['torch', pytest.param('triton', marks=pytest.mark.skipif(not HAS_TRITON, reason='needs triton (TRITON_INTERPRET=1 on CPU)'))]

class Bad:
    "A wrong call (given the backend), the exception it must raise and the words its message must contain."
    def __init__(self, id: str, call, exc: type, *words: str):
        self.id, self.call, self.exc, self.words = id, call, exc, words
    def __repr__(self): return self.id

def r(*shape, dtype=torch.float32): return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)

X, W = r(2, 8), torch.ones(8)
Q = r(1, 4, 2, 8)                              # (b, t, h, d)
P = r(5, 2, 8)                                 # (n, h, d) packed
CU = torch.tensor([0, 2, 5], dtype=torch.int32)
DQ, DV, BETA = r(1, 1, 4, 8), r(1, 1, 4, 8), torch.rand(1, 1, 4)
VALS, QRY = r(3, 1, 2, 8), r(8)
LOGITS = r(2, 3, 3)

CASES = [
    Bad('rms-norm-list', lambda b: K.rms_norm([[1.0] * 8], W, backend=b), TypeError, 'x', 'list'),
    Bad('rms-norm-integer-x', lambda b: K.rms_norm(X.long(), W, backend=b), TypeError, 'x', 'torch.int64'),
    Bad('rms-norm-integer-weight', lambda b: K.rms_norm(X, W.long(), backend=b), TypeError, 'weight', 'torch.int64'),
    Bad('rms-norm-weight-shape', lambda b: K.rms_norm(X, torch.ones(7), backend=b), ValueError, 'weight', '(7,)'),
    Bad('rms-norm-negative-eps', lambda b: K.rms_norm(X, W, eps=-1.0, backend=b), ValueError, 'eps', '-1.0'),
    Bad('rms-norm-str-eps', lambda b: K.rms_norm(X, W, eps='1e-6', backend=b), TypeError, 'eps', "'1e-6'"),
    Bad('rms-norm-weight-other-device', lambda b: K.rms_norm(X, W.to('meta'), backend=b), ValueError, 'weight', 'meta'),
    Bad('rms-norm-unknown-backend', lambda b: K.rms_norm(X, W, backend='cuda'), ValueError, 'backend', "'cuda'"),
    Bad('attention-list', lambda b: K.attention(Q.tolist(), Q, Q, backend=b), TypeError, 'q', 'list'),
    Bad('attention-integer', lambda b: K.attention(Q.long(), Q.long(), Q.long(), backend=b), TypeError, 'q', 'torch.int64'),
    Bad('attention-dtype-mix', lambda b: K.attention(Q, Q.double(), Q, backend=b), TypeError, 'k', 'torch.float64', 'torch.float32'),
    Bad('attention-half-mix', lambda b: K.attention(Q, Q, Q.half(), backend=b), TypeError, 'v', 'torch.float16'),
    Bad('attention-bad-shape', lambda b: K.attention(Q, Q[..., :4], Q, backend=b), ValueError, 'k', '(1, 4, 2, 4)'),
    Bad('attention-rank-3-without-cu', lambda b: K.attention(P, P, P, backend=b), ValueError, 'q', '(5, 2, 8)'),
    Bad('attention-cu-decreasing', lambda b: K.attention(P, P, P, torch.tensor([0, 4, 2, 5]), backend=b), ValueError,
        'cu_seqlens', '[0, 4, 2, 5]'),
    Bad('attention-cu-wrong-end', lambda b: K.attention(P, P, P, torch.tensor([0, 2, 4]), backend=b), ValueError, 'cu_seqlens', 'n=5'),
    Bad('attention-cu-float', lambda b: K.attention(P, P, P, CU.float(), backend=b), TypeError, 'cu_seqlens', 'torch.float32'),
    Bad('attention-cu-list', lambda b: K.attention(P, P, P, [0, 2, 5], backend=b), TypeError, 'cu_seqlens', 'list'),
    Bad('attention-zero-max-seqlen', lambda b: K.attention(P, P, P, CU, max_seqlen=0, backend=b), ValueError, 'max_seqlen', '0'),
    Bad('attention-str-scale', lambda b: K.attention(Q, Q, Q, scale='0.1', backend=b), TypeError, 'scale', "'0.1'"),
    Bad('attention-heads-not-multiple', lambda b: K.attention(r(1, 4, 3, 8), Q, Q, backend=b), ValueError, 'k', 'h_kv'),
    Bad('attention-reference-list', lambda b: K.attention_reference(Q.tolist(), Q, Q), TypeError, 'q', 'list'),
    Bad('cu-negative-length', lambda b: K.lengths_to_cu_seqlens([3, -1]), ValueError, 'lengths', '-1'),
    Bad('cu-float-lengths', lambda b: K.lengths_to_cu_seqlens([2.5, 1.0]), TypeError, 'lengths', 'torch.float32'),
    Bad('cu-lengths-2d', lambda b: K.lengths_to_cu_seqlens([[1, 2]]), ValueError, 'lengths', '(1, 2)'),
    Bad('delta-list', lambda b: K.delta_rule(DQ.tolist(), DQ, DV, BETA, backend=b), TypeError, 'q', 'list'),
    Bad('delta-integer', lambda b: K.delta_rule(DQ.long(), DQ.long(), DV.long(), BETA, backend=b), TypeError, 'q', 'torch.int64'),
    Bad('delta-dtype-mix', lambda b: K.delta_rule(DQ, DQ.double(), DV, BETA, backend=b), TypeError, 'k', 'torch.float64'),
    Bad('delta-integer-beta', lambda b: K.delta_rule(DQ, DQ, DV, BETA.long(), backend=b), TypeError, 'beta', 'torch.int64'),
    Bad('delta-beta-shape', lambda b: K.delta_rule(DQ, DQ, DV, BETA[..., :3], backend=b), ValueError, 'beta', '(1, 1, 3)'),
    Bad('delta-zero-chunk', lambda b: K.delta_rule(DQ, DQ, DV, BETA, chunk_size=0, backend=b), ValueError, 'chunk_size', '0'),
    Bad('delta-float-chunk', lambda b: K.delta_rule(DQ, DQ, DV, BETA, chunk_size=2.5, backend=b), TypeError, 'chunk_size', '2.5'),
    Bad('delta-state-shape', lambda b: K.delta_rule(DQ, DQ, DV, BETA, initial_state=torch.zeros(1, 1, 8, 4), backend=b),
        ValueError, 'initial_state', '(1, 1, 8, 4)'),
    Bad('delta-str-scale', lambda b: K.delta_rule(DQ, DQ, DV, BETA, scale='a', backend=b), TypeError, 'scale', "'a'"),
    Bad('delta-chunked-zero-chunk', lambda b: delta_rule_chunked(DQ, DQ, DV, BETA, chunk_size=0), ValueError, 'chunk_size', '0'),
    Bad('delta-recurrent-list-beta', lambda b: delta_rule_recurrent(DQ, DQ, DV, BETA.tolist()), TypeError, 'beta', 'list'),
    Bad('depth-integer', lambda b: K.depth_attention(VALS.long(), QRY, backend=b), TypeError, 'values', 'torch.int64'),
    Bad('depth-query-list', lambda b: K.depth_attention(VALS, QRY.tolist(), backend=b), TypeError, 'query', 'list'),
    Bad('depth-negative-eps', lambda b: K.depth_attention(VALS, QRY, eps=-1.0, backend=b), ValueError, 'eps', '-1.0'),
    Bad('depth-query-shape', lambda b: K.depth_attention(VALS, QRY[:4], backend=b), ValueError, 'query', '(4,)'),
    Bad('depth-rank-3', lambda b: K.depth_attention(VALS[0], QRY, backend=b), ValueError, 'values', '(1, 2, 8)'),
    Bad('sinkhorn-list', lambda b: K.sinkhorn(LOGITS.tolist(), backend=b), TypeError, 'logits', 'list'),
    Bad('sinkhorn-integer', lambda b: K.sinkhorn(LOGITS.long(), backend=b), TypeError, 'logits', 'torch.int64'),
    Bad('sinkhorn-not-square', lambda b: K.sinkhorn(LOGITS[..., :2], backend=b), ValueError, 'logits', '(2, 3, 2)'),
    Bad('sinkhorn-zero-iters', lambda b: K.sinkhorn(LOGITS, n_iters=0, backend=b), ValueError, 'n_iters', '0'),
    Bad('sinkhorn-float-iters', lambda b: K.sinkhorn(LOGITS, n_iters=2.5, backend=b), TypeError, 'n_iters', '2.5'),
    Bad('sinkhorn-str-iters', lambda b: K.sinkhorn(LOGITS, n_iters='3', backend=b), TypeError, 'n_iters', "'3'"),
    Bad('cu-check-float', lambda b: K.check_cu_seqlens(CU.float(), 5), TypeError, 'cu_seqlens', 'torch.float32'),
    Bad('attention-max-seqlen-float', lambda b: K.attention(P, P, P, CU, max_seqlen=2.5, backend=b), TypeError, 'max_seqlen', '2.5'),
    Bad('rms-norm-reference-integer', lambda b: K.rms_norm_reference(X.long(), W), TypeError, 'x', 'torch.int64'),
    Bad('depth-reference-negative-eps', lambda b: K.depth_attention_reference(VALS, QRY, eps=-1.0), ValueError, 'eps', '-1.0'),
    Bad('sinkhorn-reference-list', lambda b: K.sinkhorn_reference(LOGITS.tolist()), TypeError, 'logits', 'list'),
    Bad('use-unknown-backend', lambda b: K.use('gpu').__enter__(), ValueError, 'backend', "'gpu'"),
]

@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('case', CASES, ids=repr)
def test_bad_input(case, backend):
    with pytest.raises(case.exc) as e: case.call(backend)
    for w in case.words: assert w in str(e.value), f"{case.id}: {w!r} not in the message {str(e.value)!r}"

@pytest.mark.skipif(not HAS_TRITON, reason='needs triton (TRITON_INTERPRET=1 on CPU)')
@pytest.mark.parametrize('case', CASES, ids=repr)
def test_both_backends_say_the_same(case):
    "The check runs at the entry, before dispatch: the torch and the Triton path refuse with one message."
    messages = []
    for backend in ('torch', 'triton'):
        with pytest.raises(case.exc) as e: case.call(backend)
        messages.append(str(e.value))
    assert messages[0] == messages[1]

# The dtype rule, stated once in `kernels.check_inputs`: the tensors multiplied together (x; q, k, v; values; logits)
# share one floating dtype; the parameter-like ones (weight, query, beta, initial_state) may be any floating dtype
# and are cast. Both backends accept each of these mixes and agree on the values.
MIXES = [
    ('rms_norm', lambda b, d: K.rms_norm(X.to(d), W.double().to(d), backend=b)),
    ('depth_attention', lambda b, d: K.depth_attention(VALS.to(d), QRY.double().to(d), backend=b)),
    ('delta_rule', lambda b, d: K.delta_rule(DQ.to(d), DQ.to(d), DV.to(d), BETA.double().to(d), backend=b,
                                             initial_state=torch.zeros(1, 1, 8, 8, dtype=torch.float64, device=d))[0]),
]

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])

@pytest.mark.skipif(not HAS_TRITON, reason='needs triton (TRITON_INTERPRET=1 on CPU)')
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name, call', MIXES, ids=[m[0] for m in MIXES])
def test_backends_accept_the_same_mixes(name, call, device):
    a, b = call('torch', device), call('triton', device)
    assert a.dtype == b.dtype == torch.float32
    tol = 1e-5 if device == 'cpu' else 2e-3   # fp32, sums in another order; on a GPU tl.dot may round through TF32
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)
