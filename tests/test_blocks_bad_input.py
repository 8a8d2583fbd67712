"Bad input to the blocks and baselines gets errors that name the argument, the expected and the received value."
import pytest, torch
from neuralcircuits.blocks import (Attention, PatchEmbedding, RotaryEmbedding, TransformerConfig, TransformerLM,
                                   ViT, ViTConfig)

LM = TransformerConfig(vocab_size=61, max_len=16, d_model=48, n_layers=1, n_heads=3)
VIT = ViTConfig(image_size=16, patch_size=4, channels=3, n_classes=10, d_model=36, n_layers=1, n_heads=4)

@pytest.fixture(scope='module')
def lm(): return TransformerLM(LM)

def test_tokens_too_long(lm):
    with pytest.raises(ValueError, match=r"tokens has axis t=17 but the model was built for at most t=16"):
        lm(torch.zeros(2, 17, dtype=torch.long))

def test_tokens_past_max_len_from_start(lm):
    with pytest.raises(ValueError, match=r"tokens has axis t=4 from position 14, but the model was built for at most t=16"):
        lm(torch.zeros(1, 4, dtype=torch.long), start=14)

@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bool])
def test_tokens_not_integers(lm, dtype):
    with pytest.raises(TypeError, match=rf"tokens must hold integer token ids, got dtype {dtype}"):
        lm(torch.zeros(2, 4, dtype=dtype))

def test_tokens_not_a_tensor(lm):
    with pytest.raises(TypeError, match="tokens must be a torch.Tensor of token ids, got list"): lm([[1, 2, 3]])

def test_tokens_wrong_rank(lm):
    with pytest.raises(ValueError, match=r"tokens must have 2 axes \(b t\), got shape \(2, 4, 1\)"):
        lm(torch.zeros(2, 4, 1, dtype=torch.long))

@pytest.mark.parametrize('bad', [61, -1])
def test_token_ids_outside_vocabulary(lm, bad):
    with pytest.raises(ValueError, match=rf"tokens holds token id {bad} but the vocabulary has ids 0..60"):
        lm(torch.tensor([[1, bad, 2]]))

def test_generate_past_max_len(lm):
    with pytest.raises(ValueError, match=r"tokens \(10\) plus max_new_tokens \(7\) exceed max_len=16"):
        lm.generate(torch.zeros(1, 10, dtype=torch.long), 7)

@pytest.mark.parametrize('override, message', [
    (dict(n_heads=5), "n_heads=5 is invalid: must divide d_model=48"),
    (dict(n_kv_heads=2), "n_kv_heads=2 is invalid: must divide n_heads=3"),
    (dict(mlp='relu'), "mlp='relu' is invalid: must be 'gelu' or 'swiglu'"),
    (dict(pos='alibi'), "pos='alibi' is invalid: must be 'learned' or 'rope'"),
    (dict(d_model=-4), "d_model must be >= 1, got d_model=-4"),
    (dict(dropout=1.5), "dropout=1.5 is invalid: must be in [0, 1)"),
    (dict(n_layer=2), "no field 'n_layer'; did you mean 'n_layers'"),
    (dict(n_heads=8, d_model=24, pos='rope'), "n_heads=8 is invalid: must leave an even head size for RoPE, d_head=3"),
])
def test_bad_config(override, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[')):
        LM.replace(**override)

def test_images_wrong_size():
    with pytest.raises(ValueError, match="images has axis x=12 but the model was built for x=16"):
        ViT(VIT)(torch.zeros(1, 3, 16, 12))

def test_images_wrong_channels():
    with pytest.raises(ValueError, match="images has axis c=1 but the model was built for c=3"):
        ViT(VIT)(torch.zeros(1, 1, 16, 16))

def test_images_integer():
    with pytest.raises(TypeError, match="images must be a floating-point torch.Tensor, got torch.uint8"):
        ViT(VIT)(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))

def test_vit_bad_patch():
    with pytest.raises(ValueError, match="patch_size=5 is invalid: must divide image_size=16"): VIT.replace(patch_size=5)

def test_module_arguments():
    with pytest.raises(ValueError, match="n_heads=5 must divide d_model=48"): Attention(48, 5)
    with pytest.raises(ValueError, match="n_kv_heads=4 must divide n_heads=6"): Attention(48, 6, n_kv_heads=4)
    with pytest.raises(ValueError, match="d_head must be even for rotary embeddings, got d_head=5"): RotaryEmbedding(5)
    with pytest.raises(ValueError, match="patch_size=3 must divide image_size=16"): PatchEmbedding(16, 3, 3, 8)
