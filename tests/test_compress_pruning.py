"Compression II's pruning claims (PAPERS.md P29 OPTIN, P42 NViT) on the shipped trained digits ViT."
import pytest, torch
from neuralcircuits.zoo.compress.trained import trained, task_of, held_out, accuracy
from neuralcircuits.zoo.compress.structure import Masks, masked_forward, rebuild, macs, count_macs, random_scores
from neuralcircuits.zoo.compress import optin as O, nvit_prune as N

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def digits():
    vit, task = trained('vit-digits'), task_of('vit-digits')
    xt, yt = task.split['train']
    return vit, *held_out(task), xt[:32], [(xt[i:i + 64], yt[i:i + 64]) for i in range(0, 256, 64)]


@pytest.fixture(scope='module')
def optin_distances(digits):
    vit, _, _, calib, _ = digits
    return O.distances(vit, calib, n_tokens=512)


def random_accuracy(vit, x, y, target, select):
    return [accuracy(rebuild(vit, select(random_scores(vit, s), target)), x, y) for s in range(5)]


@pytest.mark.parametrize('target', [0.6, 0.45])
def test_optin_meets_its_macs_target(digits, optin_distances, target):
    vit, x, y, _, _ = digits
    slim = rebuild(vit, O.select_under_macs(O.TrajectoryLoss()(optin_distances), vit.cfg, target))
    measured = macs(slim)                                                 # FlopCounterMode on the rebuilt model
    assert measured <= target * macs(vit) and measured > target * macs(vit) - 22032   # within one head's MACs of the budget


def test_optin_prune_is_score_select_rebuild(digits, optin_distances):
    vit, x, _, calib, _ = digits
    slim, masks = O.optin_prune(vit, calib[:32], 0.6)
    # optin_prune scores with the default 768 tokens: on 544 tokens that is every token, a fixed reordering
    ref = O.select_under_macs(O.TrajectoryLoss()(O.distances(vit, calib, n_tokens=768)), vit.cfg, 0.6)
    assert torch.equal(masks.heads, ref.heads) and torch.equal(masks.neurons, ref.neurons)


def test_optin_importance_is_the_trajectory_loss_of_a_neuron(digits, optin_distances):
    "A neuron's score, by hand: MD at its block and after, plus c KL, for the model with only that neuron masked."
    vit, _, _, calib, _ = digits
    loss = O.TrajectoryLoss()
    scores = loss(optin_distances)
    masks = Masks.full(vit); masks.neurons[0, 17] = 0
    with torch.no_grad():
        z, outs = masked_forward(vit, calib, Masks.full(vit)); zs, souts = masked_forward(vit, calib, masks)
    tok = O._tokens(32 * 17, 512, 0)
    md = sum(O.manifold_distance(outs[i].flatten(0, 1)[tok], souts[i].flatten(0, 1)[tok]) for i in range(3))
    d = optin_distances
    span = loss.spans(3)[:, None]
    all_md = torch.cat([(d.heads_md * span).sum(-1).flatten(), (d.neurons_md * span).sum(-1).flatten()])
    all_kl = torch.cat([d.heads_kl.flatten(), d.neurons_kl.flatten()])
    c = 10.0 ** round(torch.log10(all_md.mean() / (10 * all_kl.mean())).item())
    expected = md + c * O.distill_kl(z, zs)
    assert abs(scores.neurons[0, 17] - expected) <= 1e-3 * expected       # float32 sums, relative 1e-3


def test_optin_beats_random_at_equal_budget(digits, optin_distances):
    vit, x, y, _, _ = digits
    select = lambda s, t: O.select_under_macs(s, vit.cfg, t)
    optin = accuracy(rebuild(vit, select(O.TrajectoryLoss()(optin_distances), 0.6)), x, y)
    rand = random_accuracy(vit, x, y, 0.6, select)
    # measured when written: OPTIN 0.946, random 0.105 on average (best of 5: 0.162), unpruned 0.973
    assert optin > 0.93 and optin > max(rand) + 0.5, (optin, rand)


def test_optin_code_loop_differs_from_the_paper_after_block_0(digits, optin_distances):
    vit, _, _, calib, _ = digits
    md, kl = O.code_head_distances(vit, calib, n_tokens=512)
    d = optin_distances
    assert torch.allclose(kl[0], d.heads_kl[0], rtol=1e-3)               # nothing upstream of block 0: the same
    assert ((kl[1:] - d.heads_kl[1:]).abs() / d.heads_kl[1:]).min() > 0.5   # upstream heads left masked: not the same


def test_nvit_ranking_is_one_list_across_kinds(digits):
    vit, _, _, _, batches = digits
    rank = N.ranking(N.saliency(vit, batches))
    assert len(rank) == 12 + 384 + 32 and [r[0] for r in rank] == sorted(r[0] for r in rank)
    where = {k: [i for i, r in enumerate(rank) if r[1] == k] for k in N.KINDS}
    assert min(where['heads']) < max(where['neurons']) and min(where['embed']) < max(where['heads'])   # the kinds interleave


def test_nvit_rebuilt_model_is_smaller_and_equals_the_masked_one(digits):
    vit, x, y, _, batches = digits
    masks, _ = N.nvit_masks(vit, batches, 0.5, eta=5.8e-11)              # latency-aware: narrows the embedding too
    assert masks.embed.sum() < 32
    slim = rebuild(vit, masks)
    with torch.no_grad():
        gap = (slim(x) - masked_forward(vit, x, masks)[0]).abs().max()
    assert gap < 1e-4                                                     # logits up to ~10 in float32: relative 1e-5
    assert sum(p.numel() for p in slim.parameters()) < sum(p.numel() for p in vit.parameters())
    assert macs(slim) <= 0.5 * macs(vit)


def test_nvit_beats_random_at_equal_budget(digits):
    vit, x, y, _, batches = digits
    nvit = accuracy(N.nvit_prune(vit, batches, 0.6), x, y)
    rand = random_accuracy(vit, x, y, 0.6, lambda s, t: N.prune_lowest(vit, s, t))
    # measured when written: NViT 0.970, random 0.471 on average (best of 5: 0.687)
    assert nvit > 0.96 and nvit > max(rand) + 0.2, (nvit, rand)


def test_latency_drops_read_the_table():
    "On a table linear in (embed, heads, mlp), interpolation is exact: the drop of one structure is its coefficient."
    grid = (0, 16, 32), (0, 2, 4), (0, 64, 128)
    lat = lambda e, h, f: 1.0 * e + 10.0 * h + 0.5 * f
    table = N.LatencyTable(*grid, [[[lat(e, h, f) for f in grid[2]] for h in grid[1]] for e in grid[0]])
    masks = Masks(torch.ones(3, 4), torch.ones(3, 128), torch.ones(32)); masks.heads[1, 0] = 0
    d = N.latency_drops(table, masks)
    assert torch.allclose(d.heads, torch.full((3, 4), 10.0)) and torch.allclose(d.neurons, torch.full((3, 128), 0.5))
    assert torch.allclose(d.embed, torch.full((32,), 3.0))              # one dim less in each of the 3 blocks
