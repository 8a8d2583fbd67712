"Modules nobody here wrote get diagrams: torch.nn, x-transformers and Hugging Face models from small configs (no weights)."
import pytest, re, torch
from torch import nn
import torch.nn.functional as F
from neuralcircuits.circuits import check_traceable

torch.set_num_threads(1)
ids = torch.randint(100, (2, 7), generator=torch.Generator().manual_seed(0))

def size_labels(d) -> bool:
    "Some wires are labelled with sizes (no names are known in third-party code)."
    return any(re.fullmatch(r'[\d ]+', r['outs'][0] or 'x') for r in d.ops() if r['outs'])

def test_x_transformers_decoder():
    from x_transformers import TransformerWrapper, Decoder
    m = TransformerWrapper(num_tokens=100, max_seq_len=32, attn_layers=Decoder(dim=32, depth=3, heads=4)).eval()
    d = check_traceable(m, ids)
    folds = [b for b in d.tree.blocks() if b.count > 1]
    assert [(b.count, b.shared) for b in folds] == [(3, False)]        # norm/attn/residual/norm/ff/residual x3
    assert size_labels(d)

def test_hf_llama():
    transformers = pytest.importorskip('transformers')
    cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=64, use_cache=False)
    d = check_traceable(transformers.LlamaForCausalLM(cfg).eval(), ids)
    assert type(d.ir.output).__name__ == 'CausalLMOutputWithPast'
    assert [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1] == [('LlamaDecoderLayer', 4)]
    assert any(r['kind'] == 'Attention' and r['causal'] for r in d.ops())
    assert size_labels(d)

def test_hf_gpt2():
    transformers = pytest.importorskip('transformers')
    cfg = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=3, n_head=4, n_positions=32, use_cache=False,
                                  bos_token_id=0, eos_token_id=0)
    d = check_traceable(transformers.GPT2LMHeadModel(cfg).eval(), ids)
    assert [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1] == [('GPT2Block', 3)]
    assert sum(1 for o in d.ir.ops if o.attrs.get('residual')) == 6

def test_torch_transformer_encoder():
    m = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 6).eval()
    d = check_traceable(m, torch.randn(2, 5, 32))
    assert [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1] == [('TransformerEncoderLayer', 6)]
    attn = [r['op'] for r in d.ops() if r['path'] == 'layers.0.self_attn']     # the composite, drawn as its parts
    assert 'multi_head_attention_forward' not in attn
    assert [o for o in attn if o in ('linear', 'scaled_dot_product_attention')] == ['linear', 'scaled_dot_product_attention', 'linear']

class SelfAttention(nn.Module):
    "nn.MultiheadAttention on its own, with the weights it returns by default (need_weights=True)."
    def __init__(self): super().__init__(); self.mha = nn.MultiheadAttention(32, 4, dropout=0.1, batch_first=True)
    def forward(self, x): return self.mha(x, x, x)

@pytest.mark.parametrize('train', [False, True])
def test_multihead_attention_recorded_as_its_parts(train):
    m, x = SelfAttention().train(train), torch.randn(2, 5, 32)
    d = check_traceable(m, x)                                              # bit-identical under capture and on replay
    kinds = [(r['kind'], r['op']) for r in d.ops() if r['kind'] not in ('Rearrange', 'Index', 'Copy')]
    dropout = [('Elementwise', 'dropout')] if train else []               # attention dropout: replayed from the same RNG state
    assert kinds == [('Linear', 'linear'), ('Elementwise', 'mul'), ('Contraction', 'bmm'), ('Softmax', 'softmax'), *dropout,
                     ('Contraction', 'bmm'), ('Linear', 'linear'), ('Reduce', 'mean')]   # in-projection, scores, softmax, sum, out-projection, head mean
    assert d.ops()[0]['code'] == 'def forward(self, x): return self.mha(x, x, x)'   # every part points at the line that called the module
    assert F.multi_head_attention_forward.__globals__['has_torch_function'] is torch._C._has_torch_function   # nothing global changed
    assert not torch.overrides._is_torch_function_mode_enabled()

def test_torch_transformer():
    m = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64, batch_first=True).eval()
    d = check_traceable(m, (torch.randn(2, 6, 32), torch.randn(2, 5, 32)))
    assert [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1] == [('TransformerEncoderLayer', 2), ('TransformerDecoderLayer', 2)]
    assert sum(r['op'] == 'scaled_dot_product_attention' for r in d.ops()) == 2 + 2 * 2       # self-attention, and cross-attention in the decoder

def test_hf_bert():
    transformers = pytest.importorskip('transformers')
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=32)
    d = check_traceable(transformers.BertModel(cfg).eval(), ids)
    assert type(d.ir.output).__name__ == 'BaseModelOutputWithPoolingAndCrossAttentions'
    assert ('BertLayer', 2) in [(b.cls, b.count) for b in d.tree.blocks() if b.count > 1]
    assert not any(r['kind'] == 'Attention' and r.get('causal') for r in d.ops())     # an encoder: no causal mask
