"What other parts of neuralcircuits rely on from the blocks: the make_block hook, the Residual protocol, capture_weights, decoding."
import torch
from torch import nn
from neuralcircuits.blocks import (Attention, Block, Residual, TransformerConfig, TransformerLM, ViT, ViTConfig,
                                   kv_caching)

CFG = TransformerConfig(vocab_size=61, max_len=12, d_model=48, n_layers=2, n_heads=3)
TOKENS = torch.randint(61, (2, 12), generator=torch.Generator().manual_seed(0))

class ScaledResidual(Residual):
    "A residual variant: same protocol, different merge."
    def forward(self, x): return x + 0.5 * self.branch(self.norm(x))

class ScaledLM(TransformerLM):
    def make_block(self, i): return Block(self.cfg, residual=ScaledResidual)

def greedy_recompute(model, tokens, n):
    for _ in range(n): tokens = torch.cat((tokens, model(tokens)[:, -1].argmax(-1, keepdim=True)), 1)
    return tokens

@torch.no_grad()
def test_make_block_hook_and_residual_variant():
    torch.manual_seed(0)
    m = ScaledLM(CFG).eval()
    assert all(type(b.attn) is ScaledResidual and type(b.mlp) is ScaledResidual for b in m.blocks)
    assert m.generate(TOKENS[:, :3], 6, temperature=0).tolist() == greedy_recompute(m, TOKENS[:, :3], 6).tolist()

@torch.no_grad()
def test_residual_protocol_for_probes():
    torch.manual_seed(0)
    m, seen = TransformerLM(CFG), []
    for mod in m.modules():
        if isinstance(mod, Residual):
            mod.register_forward_hook(lambda r, i, o: seen.append((i[0], r.branch(r.norm(i[0])), o)))
    m(TOKENS)
    assert len(seen) == 2 * CFG.n_layers
    for stream_in, write, stream_out in seen: assert torch.equal(stream_out, stream_in + write)
    for (_, _, out), (nxt, _, _) in zip(seen, seen[1:]): assert torch.equal(out, nxt)   # one stream, block to block

@torch.no_grad()
def test_capture_weights_in_a_whole_model():
    torch.manual_seed(0)
    m = TransformerLM(CFG.replace(pos='rope', n_kv_heads=1))
    ref = m(TOKENS)
    attns = [a for a in m.modules() if isinstance(a, Attention)]
    for a in attns: a.capture_weights = True
    # explicit softmax vs the fused kernel: float32 round-off only
    torch.testing.assert_close(m(TOKENS), ref, atol=1e-5, rtol=1e-5)
    for a in attns:
        assert a.last_weights.shape == (2, 3, 12, 12)
        assert float(a.last_weights.triu(1).abs().max()) == 0.0

@torch.no_grad()
def test_decoding_without_cache_matches_cache():
    torch.manual_seed(0)
    m = TransformerLM(CFG.replace(mlp='swiglu', norm='rms'))
    class NoCache(TransformerLM): decode_with_cache = False
    n = NoCache(CFG.replace(mlp='swiglu', norm='rms')); n.load_state_dict(m.state_dict())
    assert m.generate(TOKENS[:, :2], 9, temperature=0).tolist() == n.generate(TOKENS[:, :2], 9, temperature=0).tolist()
    assert all(a.cache is None for a in m.modules() if isinstance(a, Attention))

def test_generate_restores_training_mode():
    m = TransformerLM(CFG).train()
    m.generate(TOKENS[:, :2], 2)
    assert m.training

@torch.no_grad()
def test_vit_blocks_are_not_causal():
    torch.manual_seed(0)
    v = ViT(ViTConfig(image_size=16, patch_size=4, n_classes=10, d_model=36, n_layers=1, n_heads=4))
    x = torch.randn(1, 3, 16, 16)
    a = v.blocks[0].attn.branch; a.capture_weights = True
    v(x)
    assert a.last_weights.shape == (1, 4, 17, 17) and float(a.last_weights.min()) > 0   # every patch reads every patch

def test_meta_device_build():
    with torch.device('meta'): m = TransformerLM(TransformerConfig())
    assert m.head.weight is m.embed.weight and m.embed.weight.is_meta
