"""Layer dropping (P30, layer_drop) and FinerCut (P47, finercut) on the trained 8-layer char LM: their 'must show' claims.

Slow-ish (the Shakespeare task loads in a few seconds, the greedy runs ~100 forwards): about half a minute on one core.
The numbers they check are printed in nbs/zoo/compress/{layer_drop,finercut,dropping}.ipynb.
"""
import math
import pytest, torch
import torch.nn.functional as F
from neuralcircuits.zoo.compress.trained import trained, task_of, held_out, accuracy
from neuralcircuits.zoo.compress.layer_drop import DroppedLM, drop, sublayers, importance, one_shot, iterative, calibration
from neuralcircuits.zoo.compress.finercut import FinerCutLM, finercut, js_divergence, code_js


@pytest.fixture(scope='module')
def lm():
    model, text = trained('char-lm-deep'), task_of('char-lm-deep')
    x, y = held_out(text)
    return model, calibration(text), x, y


def val_loss(model, x, y):
    with torch.no_grad(): return F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()


def random_sets(k, n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(16, generator=g)[:k].tolist() for _ in range(n)]


def test_the_trained_lm_has_16_sublayers(lm):
    model = lm[0]
    assert model.cfg.n_layers == 8 and len(sublayers(model)) == 16


def test_dropped_trained_lm_is_smaller_and_equals_zeroed_sublayers(lm):
    model, _, x, _ = lm
    gone = [('attn', 6), ('mlp', 2), ('block', 4)]
    small = drop(model, gone)
    assert isinstance(small, DroppedLM) and (small.cfg.drop_attn, small.cfg.drop_mlp) == ((4, 6), (2, 4))
    zero = lambda module, args, out: torch.zeros_like(out)
    branches = [model.blocks[6].attn, model.blocks[2].mlp, model.blocks[4].attn, model.blocks[4].mlp]
    hooks = [b.branch.register_forward_hook(zero) for b in branches]
    try:
        with torch.no_grad(): assert torch.equal(small(x[:8]), model(x[:8]))      # x + 0 == x: bit for bit
    finally:
        for h in hooks: h.remove()
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(model) - n(small) == sum(n(b) for b in branches)


def test_similarity_scores_reported_for_every_module(lm):
    model, calib, _, _ = lm
    s = importance(model, calib)
    assert sorted(s) == sorted((k, i) for k in ('attn', 'mlp', 'block') for i in range(8))
    assert all(0 <= v <= 2 for v in s.values())
    # the first layer turns embeddings into features: far from an identity; every later module is close to one
    assert min(s[('attn', 0)], s[('block', 0)]) > 0.5 > 0.25 > max(v for (k, i), v in s.items() if i > 0)


def test_dropping_the_most_similar_changes_the_output_least(lm):
    model, calib, x, y = lm
    s = importance(model, calib)
    single = {key: val_loss(drop(model, [key]), x, y) for key in s}
    for kind in ('attn', 'mlp', 'block'):
        keys = [key for key in s if key[0] == kind]
        first = min(keys, key=s.get)
        assert single[first] < torch.tensor([single[k] for k in keys if k != first]).median().item(), kind
    rank = lambda v: torch.tensor(v).argsort().argsort().float()
    keys, base = list(s), val_loss(model, x, y)
    rho = torch.corrcoef(torch.stack([rank([s[k] for k in keys]), rank([single[k] - base for k in keys])]))[0, 1].item()
    assert rho > 0.5, rho          # measured 0.82
    subs, ranked = sublayers(model), one_shot(model, calib, 16, ('attn', 'mlp'))
    for k in (1, 2, 4):
        ours = val_loss(drop(model, ranked[:k]), x, y)
        it = val_loss(drop(model, iterative(model, calib, k, ('attn', 'mlp'))), x, y)
        rand = sum(val_loss(drop(model, [subs[j] for j in r]), x, y) for r in random_sets(k)) / 20
        worst = val_loss(drop(model, ranked[-k:]), x, y)
        assert ours < rand < worst and it < rand, (k, ours, it, rand, worst)


def test_paper_js_and_the_codes_variant_on_the_trained_lm(lm):
    model, calib, _, _ = lm
    with torch.no_grad(): p, q = model(calib), drop(model, [('attn', 3)])(calib)
    js = js_divergence(p, q).item()
    lp, lq = p.log_softmax(-1), q.log_softmax(-1)
    m = 0.5 * (lp.exp() + lq.exp())
    tokens, vocab = p.shape[0] * p.shape[1], p.shape[-1]
    textbook = 0.5 * (F.kl_div(m.log(), lp, log_target=True, reduction='sum') + F.kl_div(m.log(), lq, log_target=True, reduction='sum')) / tokens
    reverse = 0.5 * (F.kl_div(lp, m, reduction='sum') + F.kl_div(lq, m, reduction='sum')) / tokens
    assert 0 < js < math.log(2) and abs(js - textbook.item()) < 1e-5
    assert abs(code_js(p, q).item() * vocab - reverse.item()) < 1e-5 * reverse.item()   # the code's: reverse KL / V
    assert abs(code_js(p, q).item() - js) > 0.5 * js                                      # not the same number


def test_finercut_reports_its_order_and_keeps_most_accuracy_at_25_percent(lm):
    model, calib, x, y = lm
    steps = finercut(model, calib, 4)
    order, divs = [s for s, _ in steps], [d for _, d in steps]
    assert len(set(order)) == 4 and set(order) <= set(sublayers(model))
    assert all(0 < d < math.log(2) for d in divs) and divs == sorted(divs)
    pruned = drop(model, order, FinerCutLM)
    base, cut = accuracy(model, x, y), accuracy(pruned, x, y)
    subs = sublayers(model)
    rand = [accuracy(drop(model, [subs[j] for j in r]), x, y) for r in random_sets(4)]
    # measured: 0.502 -> 0.409 (81% kept); random mean 0.28, best 0.37
    assert cut / base > 0.75 and cut > max(rand), (base, cut, max(rand))
    assert len(sublayers(pruned)) == 12


def test_finercut_stays_below_random_along_the_curve(lm):
    model, calib, x, y = lm
    order = [s for s, _ in finercut(model, calib, 8)]
    subs, g = sublayers(model), torch.Generator().manual_seed(1)
    randoms = [[subs[j] for j in torch.randperm(16, generator=g).tolist()] for _ in range(10)]
    for k in range(1, 9):
        ours = val_loss(drop(model, order[:k]), x, y)
        rand = sum(val_loss(drop(model, r[:k]), x, y) for r in randoms) / 10
        assert ours < rand, (k, ours, rand)
