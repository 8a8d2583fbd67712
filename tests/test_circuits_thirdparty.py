"Modules nobody here wrote get diagrams: x-transformers and Hugging Face models from small configs (no weights)."
import pytest, re, torch
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
    assert any(r['op'] == 'multi_head_attention_forward' for r in d.ops())
