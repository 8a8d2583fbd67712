"""`probe.record` on every zoo entry and on modules it does not know: what it records, and what it leaves behind."""
import pytest, torch
from torch import nn
from neuralcircuits import zoo
from neuralcircuits.probe import record, streams, as_stream, Cache

KEYS = zoo.keys()


def run(model, x):
    return model(*x) if isinstance(x, tuple) else model(**x) if isinstance(x, dict) else model(x)


def flat(out):
    return [out] if isinstance(out, torch.Tensor) else [t for o in out for t in flat(o)]


def hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def flags(model):
    "Every probe flag and stored weight on the model, by module path."
    return {(p, a): getattr(m, a) for p, m in model.named_modules()
            for a in ('capture_weights', 'last_weights', 'capture_mixing', 'last_mixing') if a in vars(m)}


def staged(cache) -> bool:
    "Whether the blocks' outputs change width (the stages of a CNN: ConvNeXt, Inception-ResNet) or length (IA-RED² drops tokens): not one residual stream."
    outs = [cache[cache.blocks[0]]['stream_in']] + [cache[b]['stream_out'] for b in cache.blocks]
    return len({t.shape[-1] for t in outs}) > 1 or len({as_stream(t).shape[1] for t in outs}) > 1


@pytest.mark.parametrize('key', KEYS)
def test_record_every_zoo_entry(key):
    model, x = zoo.tiny(key)
    model.train()
    state = flags(model)
    with torch.no_grad():
        model.eval(); before = flat(run(model, x)); model.train()
        cache = record(model, x)
        assert hooks(model) == 0 and flags(model) == state and model.training
        model.eval(); after = flat(run(model, x))
    assert all(torch.equal(a, b) for a, b in zip(before, after)), f"{key}: recording changed the model's output"
    assert cache.blocks, f"{key}: no block recorded"
    if staged(cache):                    # a staged network: no one stream to follow, and `streams` says so
        with pytest.raises(ValueError, match='the stream changes (shape|length) between blocks'): streams(cache)
        return
    s = streams(cache)
    assert len(s) == len(cache.blocks) + 1 and all(t.ndim == 3 and t.shape[-1] == s[0].shape[-1] for t in s)
    for a in cache.attention:   # attention rows are distributions; a padded graph node's row is all zero (it attends to nothing)
        w = cache[a]['weights'].double()
        sums = w.sum(-1)
        torch.testing.assert_close(sums, torch.where(w.abs().amax(-1) > 0, 1.0, 0.0).to(sums), atol=1e-5, rtol=0)


@pytest.mark.parametrize('key', ['transformer', 'vit'])
def test_baseline_stream_is_the_sum_of_writes(key):
    """stream_out == stream_in + attention write + MLP write, for every block. Grouped as the model adds,
    ((in + attn) + mlp), it is bit-exact; grouped any other way it differs by float rounding only: 1e-6 of the
    stream's largest entry (float32 has 24 bits, so a few ulps of a sum of three terms)."""
    model, x = zoo.tiny(key)
    cache = record(model, x)
    for b in cache.blocks:
        attn, mlp = (cache[k] for k in cache.sublayers[b])
        s_in, s_out = cache[b]['stream_in'], cache[b]['stream_out']
        assert torch.equal(s_out, (s_in + attn['write']) + mlp['write'])
        torch.testing.assert_close(s_out, s_in + (attn['write'] + mlp['write']), atol=1e-6 * s_out.abs().max().item(), rtol=0)
        assert torch.equal(attn['stream_out'], mlp['stream_in'])


def test_attention_rows_sum_to_one_and_are_causal():
    model, x = zoo.tiny('transformer', n_layers=3)
    cache = record(model, x)
    assert len(cache.attention) == 3
    for a in cache.attention:
        w = cache[a]['weights']                                     # (b, h, t, s)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-6, rtol=0)
        assert w.triu(1).abs().max() == 0


def test_attnres_weights_are_the_modules_softmax():
    "The recorded depth weights equal softmax_l(w . RMSNorm(v_l)), recomputed from the sources the read received."
    model, x = zoo.tiny('attnres')
    torch.manual_seed(1)
    reads = {p: m for p, m in model.named_modules() if type(m).__name__ == 'DepthRead'}
    with torch.no_grad():
        for m in reads.values(): m.query.normal_()                  # not uniform: zero queries would average
    cache = record(model, x)
    checked = 0
    for path, read in reads.items():
        if path == 'out_read': continue
        sources = cache[path.removesuffix('.read')]['stream_in']      # (b, t, l, m): what the sublayer, so its read, got
        v = sources.double()
        keys = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + read.key_norm.eps)
        want = (keys @ (read.query * read.key_norm.weight).double()).softmax(-1)   # (b, t, l)
        got = cache[path]['weights']
        assert got.shape == want.shape and got.shape[-1] == sources.shape[2]
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=0)
        assert want.shape[-1] == 1 or want.std(-1).max() > 1e-3       # a real, non-uniform softmax
        checked += 1
    assert checked == 2 * model.cfg.n_layers


def test_hooks_and_flags_restored_when_the_forward_raises():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = zoo.tiny('transformer')[0]
        def forward(self, x):
            self.lm.blocks[0](self.lm.embed_tokens(x))
            raise RuntimeError('boom')
    model, x = Boom(), zoo.tiny('transformer')[1]
    state = flags(model)
    with pytest.raises(RuntimeError, match='boom'): record(model, x)
    assert hooks(model) == 0 and flags(model) == state and model.training


def test_unknown_modules_get_block_inputs_and_outputs():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 3, enable_nested_tensor=False)
    cache = record(enc, torch.randn(2, 5, 8))
    assert cache.blocks == ['layers.0', 'layers.1', 'layers.2']
    assert torch.equal(cache['layers.2']['stream_out'], cache.output)
    lin = nn.Linear(3, 4)
    cache = record(lin, torch.randn(2, 3))
    assert cache.blocks == [''] and torch.equal(cache['']['stream_out'], cache.output)


def test_a_hugging_face_decoder():
    "Blocks of a third-party model return tuples; the hidden state is what is recorded."
    transformers = pytest.importorskip('transformers')
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(cfg)
    tokens = torch.randint(50, (2, 7))
    cache = record(model, tokens)
    assert cache.blocks == ['transformer.h.0', 'transformer.h.1']
    assert cache['transformer.h.0']['stream_out'].shape == (2, 7, 32)
    assert torch.equal(cache['transformer.h.0']['stream_out'], cache['transformer.h.1']['stream_in'])


def test_bad_model():
    with pytest.raises(TypeError, match='torch.nn.Module'): record('model', torch.zeros(1))
