"""TurboViT's 'must show' claim (PAPERS.md P32: every returned design satisfies the constraint) on the stored search,
with the family's exact invariants on whole models. Refresh the stored search with
`python /work/wt/_brief/refresh_slow.py nbs/zoo/compress/turbovit.ipynb`."""
import pytest, torch
from neuralcircuits.zoo.compress.turbovit import (TurboViT, SearchSpace, design_flops, digits16, dominates, nsga2_search,
                                                  pareto_front, random_search, saved_search, search_recipe, turbovit_tiny)

SPACE = SearchSpace()


@pytest.fixture(scope='module')
def runs():
    return saved_search()


def test_every_stored_design_is_under_the_cap_measured_again(runs):
    for r in runs.values():
        for d in r.designs:
            assert design_flops(d.config(SPACE)) == d.flops <= r.cap, (r.method, d)


def test_the_stored_fronts_are_pareto_sets_of_their_designs(runs):
    for r in runs.values():
        assert r.front == pareto_front(r.designs)
        assert not any(dominates(a, b) for a in r.front for b in r.front)
        for d in r.designs:   # every design is matched or beaten by the front
            assert any(dominates(f, d) or (f.accuracy, f.flops) == (d.accuracy, d.flops) for f in r.front), d


def test_the_searches_are_compared_at_equal_evaluations(runs):
    a, b = runs['NSGA-II'], runs['random']
    assert a.n_evals == b.n_evals == len(a.designs) == len(b.designs) == 40
    assert a.cap == b.cap == search_recipe()['isotropic_vit_flops'] // 2
    for r in runs.values():
        assert len({(d.depths, d.widths, d.heads, d.mask_unit, d.local) for d in r.designs}) == r.n_evals   # each trained once


@pytest.mark.parametrize('search', [nsga2_search, random_search])
def test_a_search_returns_only_designs_under_its_cap(search):
    cap = 1_500_000
    width = lambda cfg: sum(w * d for w, d in zip(cfg.widths, cfg.depths)) / 100   # a stand-in score, instantly known
    r = search(width, cap, n_evals=12, space=SPACE, seed=1)
    assert r.n_evals == len(r.designs) == 12
    assert all(design_flops(d.config(SPACE)) == d.flops <= cap for d in r.designs)
    assert r.front == pareto_front(r.designs) and not any(dominates(a, b) for a in r.front for b in r.front)


def test_a_mask_unit_covering_the_grid_is_global_attention_in_the_whole_model():
    local = turbovit_tiny.replace(mask_unit=8, local=(True, True, False))     # 8 = the side of the 8x8 token grid
    glob = local.replace(local=(False, False, False))
    torch.manual_seed(0); a = TurboViT(local).eval()
    b = TurboViT(glob).eval(); b.load_state_dict(a.state_dict())
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad(): assert torch.equal(a(x), b(x))


def test_the_found_design_retrains_to_its_stored_accuracy(runs):
    from neuralcircuits.train.loop import FitConfig, fit
    from neuralcircuits.zoo.compress.trained import accuracy
    recipe = search_recipe()
    best = max(runs['NSGA-II'].front, key=lambda d: d.accuracy)
    task = digits16()
    torch.manual_seed(0); model = TurboViT(best.config(SPACE))
    fit_args = {k: recipe[k] for k in ('steps', 'batch_size', 'lr', 'min_lr', 'warmup', 'weight_decay')}
    fit(model, task, FitConfig(**fit_args, eval_every=recipe['steps'], progress=False, seed=0))
    # the same seed and data order; float sums may differ with the thread count, so allow two of the 297 digits
    assert abs(accuracy(model, *task.split['val']) - best.accuracy) <= 2 / 297 + 1e-9
