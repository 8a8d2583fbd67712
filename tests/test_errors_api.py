"""Wrong calls to configs, axes, blocks, zoo, probe, widgets and circuits, as a new user makes them: each must raise
a ValueError/TypeError (or the package's own error) whose message names the argument and the value that came."""
import pytest, torch
from neuralcircuits import axes, configs, probe, zoo
from neuralcircuits.blocks import (Attention, LayerNorm, MLP, PatchEmbedding, RMSNorm, RotaryEmbedding,
                                   TransformerConfig, TransformerLM, ViT, ViTConfig)
from neuralcircuits.blocks.norms import layer_norm, rms_norm
from neuralcircuits.blocks.transformer import sample_next
from neuralcircuits.train import FitConfig

LM = TransformerConfig(vocab_size=11, max_len=8, d_model=12, n_layers=1, n_heads=2)
_lm = None
def lm():
    "One tiny LM shared by the cases (built on first use)."
    global _lm
    if _lm is None: torch.manual_seed(0); _lm = TransformerLM(LM)
    return _lm

TOKENS = torch.tensor([[1, 2, 3]])

class Bad:
    "A wrong call, the exception it must raise and the words its message must contain (the argument, what came)."
    def __init__(self, id: str, call, exc: type, *words: str):
        self.id, self.call, self.exc, self.words = id, call, exc, words
    def __repr__(self): return self.id

def check(case: Bad):
    with pytest.raises(case.exc) as e: case.call()
    message = str(e.value)
    for w in case.words: assert w in message, f"{case.id}: {w!r} not in the message {message!r}"
    return message

CONFIGS = [
    Bad('config-str-for-int', lambda: TransformerConfig(d_model='48'), TypeError, 'd_model', 'int', "'48'"),
    Bad('config-float-for-int', lambda: TransformerConfig(n_layers=2.5), TypeError, 'n_layers', 'int', '2.5'),
    Bad('config-bool-for-int', lambda: TransformerConfig(n_heads=True), TypeError, 'n_heads', 'int', 'True'),
    Bad('config-str-for-float', lambda: TransformerConfig(dropout='0.1'), TypeError, 'dropout', 'float', "'0.1'"),
    Bad('config-str-for-bool', lambda: TransformerConfig(tie_embeddings='yes'), TypeError, 'tie_embeddings', 'bool', "'yes'"),
    Bad('config-int-for-str', lambda: TransformerConfig(mlp=3), TypeError, 'mlp', 'str', '3'),
    Bad('config-str-for-optional-int', lambda: TransformerConfig(n_kv_heads='2'), TypeError, 'n_kv_heads', "'2'"),
    Bad('config-negative-rope-base', lambda: TransformerConfig(rope_base=-1.0), ValueError, 'rope_base', '-1.0'),
    Bad('config-zero-rope-base', lambda: TransformerConfig(rope_base=0.0), ValueError, 'rope_base', '0.0'),
    Bad('config-nan-dropout', lambda: TransformerConfig(dropout=float('nan')), ValueError, 'dropout', 'nan'),
    Bad('config-zero-vocab', lambda: TransformerConfig(vocab_size=0), ValueError, 'vocab_size', '0'),
    Bad('config-negative-max-len', lambda: TransformerConfig(max_len=-1), ValueError, 'max_len', '-1'),
    Bad('config-zero-d-mlp', lambda: TransformerConfig(d_mlp=0), ValueError, 'd_mlp', '0'),
    Bad('replace-wrong-type', lambda: LM.replace(n_layers='3'), TypeError, 'n_layers', "'3'"),
    Bad('replace-unknown-field', lambda: LM.replace(nlayers=3), ValueError, 'nlayers', 'n_layers'),
    Bad('replace-positional-nonsense', lambda: LM.replace(**{'d_model': [48]}), TypeError, 'd_model', '[48]'),
    Bad('vit-zero-patch', lambda: ViTConfig(image_size=16, patch_size=0), ValueError, 'patch_size', '0'),
    Bad('vit-float-channels', lambda: ViTConfig(channels=2.0), TypeError, 'channels', '2.0'),
    Bad('fit-str-lr', lambda: FitConfig(lr='3e-4'), TypeError, 'lr', "'3e-4'"),
    Bad('fit-zero-steps', lambda: FitConfig(steps=0), ValueError, 'steps', '0'),
    Bad('fit-beta1-above-one', lambda: FitConfig(beta1=1.5), ValueError, 'beta1', '1.5'),
    Bad('fit-negative-beta2', lambda: FitConfig(beta2=-0.1), ValueError, 'beta2', '-0.1'),
    Bad('fit-unknown-device', lambda: FitConfig(device='gpu'), ValueError, 'device', "'gpu'"),
    Bad('fit-bad-precision', lambda: FitConfig(precision='fp64'), ValueError, 'precision', "'fp64'"),
    Bad('fit-negative-warmup', lambda: FitConfig(warmup=-1), ValueError, 'warmup', '-1'),
    Bad('fit-zero-grad-accum', lambda: FitConfig(grad_accum=0), ValueError, 'grad_accum', '0'),
    Bad('fit-str-batch-size', lambda: FitConfig(batch_size='32'), TypeError, 'batch_size', "'32'"),
    Bad('fit-inf-lr', lambda: FitConfig(lr=float('inf')), ValueError, 'lr', 'inf'),
    Bad('fit-negative-min-lr', lambda: FitConfig(min_lr=-1.0), ValueError, 'min_lr', '-1.0'),
    Bad('fit-negative-seed', lambda: FitConfig(seed=-1), ValueError, 'seed', '-1'),
]

ZOO = [
    Bad('zoo-unknown-key', lambda: zoo.tiny('transfomer'), KeyError, "'transfomer'", "'transformer'"),
    Bad('zoo-key-not-a-string', lambda: zoo.entry(3), TypeError, 'key', '3'),
    Bad('zoo-build-unknown-field', lambda: zoo.build('transformer', n_layer=2), ValueError, "'n_layer'", 'n_layers'),
    Bad('zoo-tiny-wrong-type', lambda: zoo.tiny('transformer', d_model='big'), TypeError, 'd_model', "'big'"),
    Bad('zoo-tiny-seed-not-int', lambda: zoo.tiny('transformer', seed='a'), TypeError, 'seed', "'a'"),
    Bad('zoo-deltanet-zero-chunk', lambda: zoo.tiny('deltanet', chunk_size=0), ValueError, 'chunk_size', '0'),
    Bad('zoo-mhc-zero-sinkhorn-iters', lambda: zoo.tiny('mhc', sinkhorn_iters=0), ValueError, 'sinkhorn_iters', '0'),
    Bad('zoo-dual-stream-unknown-mixing', lambda: zoo.tiny('dual_stream', mixing='nope'), ValueError, 'mixing', "'nope'"),
    Bad('zoo-three-phase-str-bool', lambda: zoo.tiny('three_phase', rotation='yes'), TypeError, 'rotation', "'yes'"),
    Bad('zoo-hyper-zero-streams', lambda: zoo.tiny('hyper_connections', n_streams=0), ValueError, 'n_streams', '0'),
    Bad('zoo-attnres-zero-blocks', lambda: zoo.tiny('attnres', n_blocks=0), ValueError, 'n_blocks', '0'),
    Bad('zoo-depth-duality-str-beta', lambda: zoo.tiny('depth_duality', beta_init='a'), TypeError, 'beta_init', "'a'"),
    Bad('zoo-vit-patch-not-dividing', lambda: zoo.tiny('vit', image_size=15), ValueError, 'patch_size', 'image_size=15'),
    Bad('zoo-token-input-zero-batch', lambda: zoo.token_input(LM, batch=0), ValueError, 'batch', '0'),
    Bad('zoo-image-input-float-batch', lambda: zoo.image_input(ViTConfig(), batch=1.5), TypeError, 'batch', '1.5'),
    Bad('zoo-register-bad-family', lambda: zoo.register('x', paper=zoo.Paper('t', '1', 2020), family='misc', tiny=LM,
                                                       example=zoo.token_input), ValueError, 'family', "'misc'"),
    Bad('zoo-register-tiny-not-config', lambda: zoo.register('x', paper=zoo.Paper('t', '1', 2020), family='baseline',
                                                            tiny=dict(), example=zoo.token_input), TypeError, 'tiny', 'dict'),
]

AXES = [
    Bad('axes-negative-size', lambda: axes.Axes(t=-1), ValueError, 't', '-1'),
    Bad('axes-str-size', lambda: axes.Axes(t='16'), TypeError, 't', "'16'"),
    Bad('axes-check-not-tensor', lambda: axes.Axes(b=None).check([1, 2], 'b'), TypeError, 'x', 'list'),
    Bad('axes-check-wrong-size', lambda: axes.Axes(b=2).check(torch.zeros(3), 'b'), ValueError, 'b=3', 'b=2'),
    Bad('axes-check-wrong-rank', lambda: axes.Axes(b=2).check(torch.zeros(2, 2), 'b'), ValueError, 'x', '(2, 2)'),
    Bad('axes-repeated-name', lambda: axes.parse('b b'), ValueError, "'b b'"),
    Bad('axes-name-wrong-rank', lambda: axes.name(torch.zeros(2), 'a b'), ValueError, "'a b'", '(2,)'),
    Bad('axes-name-not-tensor', lambda: axes.name([1, 2], 'a'), TypeError, 'x', 'list'),
    Bad('axes-spec-not-names', lambda: axes.parse(3), TypeError, 'spec', '3'),
]

BLOCKS = [
    Bad('rope-negative-base', lambda: RotaryEmbedding(8, base=-1.0), ValueError, 'base', '-1.0'),
    Bad('rope-float-d-head', lambda: RotaryEmbedding(8.0), TypeError, 'd_head', '8.0'),
    Bad('rope-zero-d-head', lambda: RotaryEmbedding(0), ValueError, 'd_head', '0'),
    Bad('rope-odd-d-head', lambda: RotaryEmbedding(5), ValueError, 'd_head', '5'),
    Bad('layernorm-negative-eps', lambda: LayerNorm(8, eps=-1.0), ValueError, 'eps', '-1.0'),
    Bad('rmsnorm-negative-eps', lambda: RMSNorm(8, eps=-1e-6), ValueError, 'eps', '-1e-06'),
    Bad('layernorm-zero-width', lambda: LayerNorm(0), ValueError, 'd_model', '0'),
    Bad('layer-norm-fn-negative-eps', lambda: layer_norm(torch.ones(2, 4), None, None, eps=-1.0), ValueError, 'eps', '-1.0'),
    Bad('rms-norm-fn-negative-eps', lambda: rms_norm(torch.ones(2, 4), None, eps=-1.0), ValueError, 'eps', '-1.0'),
    Bad('attention-zero-heads', lambda: Attention(48, 0), ValueError, 'n_heads', '0'),
    Bad('attention-heads-not-dividing', lambda: Attention(48, 5), ValueError, 'n_heads=5', 'd_model=48'),
    Bad('attention-dropout-above-one', lambda: Attention(48, 4, dropout=1.5), ValueError, 'dropout', '1.5'),
    Bad('attention-input-rank-2', lambda: Attention(12, 2)(torch.zeros(3, 12)), ValueError, 'x', '(3, 12)'),
    Bad('attention-input-wrong-width', lambda: Attention(12, 2)(torch.zeros(1, 3, 8)), ValueError, 'x', 'm=8', 'm=12'),
    Bad('attention-input-list', lambda: Attention(12, 2)([[0.0] * 12]), TypeError, 'x', 'list'),
    Bad('mlp-zero-hidden', lambda: MLP(8, 0), ValueError, 'd_mlp', '0'),
    Bad('patch-zero', lambda: PatchEmbedding(16, 0, 3, 8), ValueError, 'patch_size', '0'),
    Bad('lm-config-dict', lambda: TransformerLM(dict(d_model=8)), TypeError, 'cfg', 'dict'),
    Bad('lm-float-tokens', lambda: lm()(TOKENS.float()), TypeError, 'tokens', 'torch.float32'),
    Bad('lm-tokens-list', lambda: lm()([[1, 2]]), TypeError, 'tokens', 'list'),
    Bad('lm-token-outside-vocab', lambda: lm()(torch.tensor([[11]])), ValueError, 'tokens', '11', '0..10'),
    Bad('lm-negative-start', lambda: lm()(TOKENS, start=-1), ValueError, 'start', '-1'),
    Bad('generate-negative-new-tokens', lambda: lm().generate(TOKENS, -1), ValueError, 'max_new_tokens', '-1'),
    Bad('generate-float-new-tokens', lambda: lm().generate(TOKENS, 2.5), TypeError, 'max_new_tokens', '2.5'),
    Bad('generate-negative-temperature', lambda: lm().generate(TOKENS, 2, temperature=-1.0), ValueError, 'temperature', '-1.0'),
    Bad('generate-zero-top-k', lambda: lm().generate(TOKENS, 2, top_k=0), ValueError, 'top_k', '0'),
    Bad('generate-float-top-k', lambda: lm().generate(TOKENS, 2, top_k=2.0), TypeError, 'top_k', '2.0'),
    Bad('generate-past-max-len', lambda: lm().generate(TOKENS, 6), ValueError, 'max_new_tokens', 'max_len=8'),
    Bad('sample-str-temperature', lambda: sample_next(torch.zeros(1, 5), temperature='hot'), TypeError, 'temperature', "'hot'"),
    Bad('sample-logits-rank-3', lambda: sample_next(torch.zeros(1, 2, 5)), ValueError, 'logits', '(1, 2, 5)'),
    Bad('vit-wrong-image-size', lambda: ViT(ViTConfig(image_size=8, patch_size=4, d_model=8, n_layers=1, n_heads=2))(
        torch.zeros(1, 3, 8, 4)), ValueError, 'images', 'x=4', 'x=8'),
    Bad('vit-integer-images', lambda: ViT(ViTConfig(image_size=8, patch_size=4, d_model=8, n_layers=1, n_heads=2))(
        torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, 'images', 'torch.uint8'),
]

def _tiny_cache():
    model, x = zoo.tiny('transformer')
    return model, x

PROBE = [
    Bad('record-model-not-module', lambda: probe.record('model', TOKENS), TypeError, 'model', 'str'),
    Bad('record-input-list', lambda: probe.record(lm(), [[1, 2]]), TypeError, 'tokens', 'list'),
    Bad('streams-empty-cache', lambda: probe.streams(probe.Cache()), ValueError, 'cache'),
    Bad('streams-not-a-cache', lambda: probe.streams('x'), TypeError, 'cache', 'str'),
    Bad('as-stream-rank-1', lambda: probe.as_stream(torch.zeros(5)), ValueError, 'stream', '(5,)'),
]

def _widgets():
    from neuralcircuits import widgets
    return widgets

WIDGETS = [
    Bad('widget-missing-input', lambda: _widgets().ResidualFlow(lm()), ValueError, 'x'),
    Bad('widget-model-not-module', lambda: _widgets().ResidualFlow('model', TOKENS), TypeError, 'model', 'str'),
    Bad('widget-depth-mixing-none', lambda: _widgets().DepthMixing(lm(), TOKENS), ValueError, 'depth-mixing'),
]

def _circuits():
    from neuralcircuits import circuits
    return circuits

CIRCUITS = [
    Bad('diagram-negative-depth', lambda: _circuits().diagram(lm(), TOKENS, depth=-1), ValueError, 'depth', '-1'),
    Bad('diagram-float-depth', lambda: _circuits().diagram(lm(), TOKENS, depth=1.5), ValueError, 'depth', '1.5'),
    Bad('diagram-model-not-module', lambda: _circuits().diagram('model', TOKENS), TypeError, 'model', 'str'),
    Bad('diagram-names-wrong-rank', lambda: _circuits().diagram(lm(), TOKENS, names='a b c'), ValueError, "'a b c'", '(1, 3)'),
    Bad('diagram-axes-not-a-dict', lambda: _circuits().diagram(lm(), TOKENS, axes=5), TypeError, 'axes', '5'),
    Bad('diagram-save-bad-suffix', lambda: _circuits().diagram(lm(), TOKENS).save('d.txt'), ValueError, 'path', "'d.txt'"),
]

# Wrong calls still answered by Python's own error, in areas other helpers own right now (the widgets, and the
# diagram engine being rewritten): strict xfails, so the owner sees the case flip when the check lands.
KNOWN_GAPS = [
    Bad('widget-batch-out-of-range', lambda: _widgets().ResidualFlow(lm(), TOKENS, batch=5), ValueError, 'batch', '5'),
    Bad('widget-decode-not-callable', lambda: _widgets().AttentionView(lm(), TOKENS, decode=3).to_html(), TypeError, 'decode', '3'),
]

def _zoo_model(key: str):
    model, x = zoo.tiny(key)
    return model, x

LM_KEYS = [k for k in zoo.keys() if zoo.entry(k).example is zoo.token_input]
ZOO_FORWARD = [Bad(f'zoo-{k}-float-tokens', lambda k=k: (lambda m, x: m(x.float()))(*_zoo_model(k)), TypeError, 'tokens', 'torch.float32')
               for k in LM_KEYS] + [
    Bad(f'zoo-{k}-too-long', lambda k=k: (lambda m, x: m(torch.cat([x, x], 1)))(*_zoo_model(k)), ValueError, 'tokens', 'at most t=')
    for k in LM_KEYS] + [
    Bad('zoo-vit-wrong-channels', lambda: (lambda m, x: m(x[:, :1]))(*_zoo_model('vit')), ValueError, 'images', 'c=1', 'c=3'),
    Bad('zoo-varlen-lengths-too-long', lambda: (lambda m, x: m(x, [30, 1]))(*_zoo_model('varlen')), ValueError, 'lengths', '[30, 1]'),
    Bad('zoo-varlen-pack-negative-length', lambda: __import__('neuralcircuits.zoo.mixers.varlen', fromlist=['pack']).pack([15, -10, 15], 20),
        ValueError, 'lengths', '[15, -10, 15]'),
    Bad('zoo-build-unknown-key', lambda: zoo.build('vitt'), KeyError, "'vitt'", "'vit'"),
]

CASES = CONFIGS + ZOO + ZOO_FORWARD + AXES + BLOCKS + PROBE + WIDGETS + CIRCUITS

@pytest.mark.parametrize('case', CASES, ids=repr)
def test_bad_input(case): check(case)

@pytest.mark.xfail(strict=True, reason="the check belongs to the widgets and circuits owners; see KNOWN_GAPS")
@pytest.mark.parametrize('case', KNOWN_GAPS, ids=repr)
def test_known_gap(case): check(case)

def test_suite_size(): assert len(CASES) >= 100          # and the kernels, train and cli files add as many again

def test_valid_calls_still_accepted():
    "The checks refuse only nonsense: the defaults, ints for floats, tuples for lists and None for optionals pass."
    assert TransformerConfig(rope_base=500000, dropout=0) == TransformerConfig(rope_base=500000.0, dropout=0.0)
    assert FitConfig(lr=1, device='cpu').lr == 1 and FitConfig(device='cuda:1').device == 'cuda:1'
    assert TransformerConfig(n_kv_heads=None, d_mlp=None).n_kv_heads is None
    out = lm().generate(TOKENS, 0)
    assert torch.equal(out, TOKENS)                       # zero new tokens: the prompt back
    assert lm().generate(TOKENS, 2, temperature=0, top_k=50).shape == (1, 5)   # top_k above v is clipped to v
