"Claims of P12 (KV-Direct's 20-turn conversation), P25 (the long-context harness and its Hugging Face peers) and P44 (RxT on the recall task)."
import pytest, torch
from neuralcircuits import zoo
from neuralcircuits.blocks import TransformerConfig, TransformerLM, kv_caching
from neuralcircuits.bench import long_context as lc
from neuralcircuits.zoo.mixers.kv_direct import converse, residual_checkpointing, stack_input_checkpointing, window_caching
from neuralcircuits.zoo.mixers.rxt import ASK, SET, RxT, RxTConfig, lookup_answers, recall_conversations, recall_vocab

HAS_TRANSFORMERS = lc.hf_available()   # transformers >= 5 (the `cache=` API the harness decodes with)


# P44: the recall task and tokens per turn

@pytest.mark.parametrize('turns,n_keys,n_values', [(8, 8, 8), (20, 5, 3), (1, 1, 1)])
def test_recall_generator_agrees_with_an_independent_lookup(turns, n_keys, n_values):
    tokens, question = recall_conversations(300, turns, n_keys, n_values, seed=3)
    answers = lookup_answers(tokens)   # raises KeyError if a question asks for a fact not yet stated
    assert torch.equal(answers[question], tokens[..., 3][question])
    assert bool((answers[~question] == -1).all())
    assert torch.equal(question, tokens[..., 0] == ASK) and bool(((tokens[..., 0] == SET) | question).all())
    assert int(tokens.max()) < recall_vocab(n_keys, n_values)
    stated = (tokens[..., 0] == SET).sum(1)
    assert bool((stated <= n_keys).all())   # each key stated at most once per conversation
    assert not bool(question[:, 0].any())   # the first turn states a fact: no question before it


def test_recall_generator_is_seeded_and_rejects_bad_sizes():
    a, b = recall_conversations(4, seed=1), recall_conversations(4, seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], recall_conversations(4, seed=2)[0])
    with pytest.raises(ValueError, match='turns'): recall_conversations(4, turns=0)


def _decoder_tokens(n_turns):
    "Tokens through RxT's decoder and through a stateless Transformer's, turn by turn, on one recall conversation."
    tok, _ = recall_conversations(1, turns=n_turns, seed=0)
    v = recall_vocab(8, 8)
    torch.manual_seed(0)
    rxt = RxT(RxTConfig(vocab_size=v, max_len=4, d_model=32, n_layers=2, n_heads=4, stm_slots=6)).eval()
    stateless = TransformerLM(TransformerConfig(vocab_size=v, max_len=4 * n_turns, d_model=32, n_layers=2, n_heads=4)).eval()
    counts = {}
    for label, m in (('rxt', rxt.blocks[0]), ('stateless', stateless.blocks[0])):
        counts[label] = []
        m.register_forward_pre_hook(lambda mod, args, c=counts[label]: c.append(args[0].shape[1]))
    with torch.no_grad():
        stm = rxt.initial_memory(1)
        for t in range(n_turns):
            _, stm = rxt(tok[:, t], stm)
            stateless(tok[:, :t + 1].reshape(1, -1))
    assert tuple(stm.shape) == (2, 1, 6, 32)   # the memory after n turns is the size it started
    return counts


def test_rxt_tokens_per_turn_do_not_grow_with_earlier_turns_and_the_baselines_grow_linearly():
    short, long = _decoder_tokens(3), _decoder_tokens(20)
    assert long['rxt'] == [4] * 20 and short['rxt'] == [4] * 3   # the interaction's 4 tokens, whatever came before
    assert long['stateless'] == [4 * (t + 1) for t in range(20)]  # the whole conversation so far
    diffs = {b - a for a, b in zip(long['stateless'], long['stateless'][1:])}
    assert diffs == {4}                                           # linear: the same step every turn
    assert sum(long['stateless']) == 4 * 20 * 21 // 2 and sum(long['rxt']) == 4 * 20   # O(N^2 T) against O(N T)


# P12: the 20-turn conversation

@pytest.fixture(scope='module')
def conversation():
    model = zoo.tiny('kv_direct', max_len=20 * 16)[0].eval()
    turns = [torch.randint(61, (2, 8), generator=torch.Generator().manual_seed(100 + i)) for i in range(20)]
    schemes = dict(kv=kv_caching, residuals=residual_checkpointing, one=stack_input_checkpointing,
                   w32=lambda m: window_caching(m, 32), w128=lambda m: window_caching(m, 128))
    return model, {k: converse(model, turns, 8, s) for k, s in schemes.items()}


def test_kv_direct_conversation_is_token_identical_and_holds_the_formulas_bytes(conversation):
    model, runs = conversation
    c, b, ref = model.cfg, 2, runs['kv'][0]
    for k in ('residuals', 'one'): assert all(torch.equal(a, r) for a, r in zip(runs[k][0], ref))
    kv = c.n_layers * 2 * c.kv_heads * c.d_head * 4   # fp32 bytes per token
    want = dict(kv=kv, residuals=c.n_layers * c.d_model * 4, one=c.d_model * 4)
    for k, per_token in want.items(): assert runs[k][1] == [16 * n * b * per_token for n in range(1, 21)]
    for w in (32, 128): assert runs[f'w{w}'][1] == [min(16 * n, w) * b * kv for n in range(1, 21)]
    assert runs['one'][1][-1] * c.n_layers == runs['residuals'][1][-1]   # one vector per token against one per layer


def test_kv_direct_window_baseline_degrades_once_outgrown(conversation):
    _, runs = conversation
    ref = runs['kv'][0]
    match = lambda k, turns: torch.cat([(a == r).flatten() for a, r in zip(runs[k][0][turns], ref[turns])]).float().mean().item()
    assert match('w128', slice(0, 8)) == 1.0     # 8 turns = 128 tokens: nothing evicted yet, exact
    assert match('w128', slice(15, 20)) < 1.0 and match('w32', slice(15, 20)) < 1.0


# P25: the harness

def test_long_context_measures_every_zoo_model_and_rejects_bad_input():
    rows = [lc.measure(k, 32, decode_tokens=2) for k in lc.KEYS]
    assert [r['key'] for r in rows] == list(lc.KEYS)
    for r in rows:
        assert r['prefill_s'] > 0 and r['peak_mib'] >= r['base_mib'] > 0 and r['params'] > 0
        assert (r['decode_ms'] is None) == (r['key'] == 'deltanet')
    with pytest.raises(ValueError, match='key'): lc.measure('nope', 32)
    with pytest.raises(ValueError, match='length'): lc.measure('mamba', 0)


def test_long_context_runs_one_configuration_per_subprocess():
    r = lc.run('mamba', 32, 1)
    assert r['key'] == 'mamba' and r['length'] == 32 and r['decode_ms'] > 0


def test_long_context_plot_and_crossover():
    rows = [dict(key=k, length=n, prefill_s=t, decode_ms=d, base_mib=1.0, peak_mib=1.0 + n / 100)
            for k, ts, ds in (('transformer', (1, 4, 16), (1, 2, 4)), ('mamba', (3, 6, 12), (2, 2, 2)), ('hybrid', (2, 5, 14), (1.5, 2, 3)))
            for n, t, d in zip((256, 1024, 4096), ts, ds)]
    assert lc.crossover(rows, 'transformer', 'mamba') == 4096
    assert lc.crossover(rows, 'transformer', 'mamba', 'decode_ms') == 4096
    assert lc.crossover(rows, 'transformer', 'hybrid', 'decode_ms') == 4096
    assert lc.crossover(rows, 'mamba', 'transformer') is None   # 256 and 1024 faster, then slower: no lasting crossover
    fig = lc.plot(rows)
    assert len(fig.data) == 3 * 3 and {t.name for t in fig.data} == {'transformer', 'mamba', 'hybrid'}
    assert list(fig.data[0].x) == [256, 1024, 4096]


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason='Hugging Face transformers >= 5 is not installed')
@pytest.mark.parametrize('key', list(lc.HF_PEERS))
def test_hf_peer_decodes_with_its_cache_as_the_full_forward(key):
    "The harness's decode path (prefill returning `cache`, then one-token steps) gives the full forward's logits."
    model = lc.build_hf(key, 64)
    x = torch.randint(256, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(x).logits
        out = model(x[:, :37], use_cache=True)
        for i in range(37, 40): out = model(x[:, i:i + 1], cache=out.cache, use_cache=True)
    torch.testing.assert_close(out.logits[0, -1], full[0, -1], atol=1e-5, rtol=1e-5)   # fp32, another summation order
    r = lc.measure(key, 64, decode_tokens=2)
    assert r['key'] == key and r['decode_ms'] > 0 and r['params'] == sum(p.numel() for p in model.parameters())
