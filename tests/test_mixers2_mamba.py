"Our Mamba mixer equals Hugging Face transformers' MambaMixer (its pure-PyTorch path) with the weights copied in."
import pytest, torch

transformers = pytest.importorskip('transformers')


def test_mamba_mixer_equals_transformers():
    from transformers import MambaConfig as HFConfig
    from transformers.models.mamba.modeling_mamba import MambaMixer as HFMixer
    from neuralcircuits.zoo.mixers.mamba import MambaMixer
    torch.manual_seed(0)
    ours = MambaMixer(16, d_state=4, d_conv=4, expand=2, chunk_size=8)
    peer = HFMixer(HFConfig(hidden_size=16, state_size=4, conv_kernel=4, expand=2, time_step_rank=ours.dt_rank,
                            use_bias=False, use_conv_bias=True, num_hidden_layers=1, vocab_size=10), 0)
    ours.load_state_dict(peer.state_dict())   # same parameter names: in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj
    x = torch.randn(2, 21, 16)
    with torch.no_grad():
        want = peer(x)   # on CPU transformers runs its reference PyTorch scan
        for form in ('chunked', 'recurrent'):
            MambaMixer.form = form
            try: got = ours(x)
            finally: MambaMixer.form = 'chunked'
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)   # fp32, another summation order
