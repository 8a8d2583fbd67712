"""The architecture-search claims of ViT-ResNAS (PAPERS.md P07) and SimQ-NAS (P34) on a super-network trained here in seconds."""
import copy, random
import pytest, torch
from neuralcircuits.zoo.compress.vit_resnas import (ResNASConfig, SuperNet, SearchSpace, extract, flops, evolve, random_search,
                                                    search_splits, train_supernet, sub_accuracy)
from neuralcircuits.zoo.compress.simq_nas import (JointSpace, Bench, QuantLinear, calibration_batches, linas, quantize, calibrate,
                                                  model_bytes, simq_fronts, hypervolumes)

SPACE = ResNASConfig(image_size=8, patch_size=2, channels=1, n_classes=10, head_dim=8, dims=(16, 32),
                     heads=((2, 2), (2, 2)), mlp=((32, 32), (64, 64)))


@pytest.fixture(scope='module')
def trained():
    "A small super-network trained for 250 steps with 4 sub-networks per forward-backward (a few seconds)."
    task, xs, ys, xt, yt = search_splits()
    torch.manual_seed(0)
    net = SuperNet(SPACE)
    train_supernet(net, SearchSpace(SPACE), task, steps=250, per_arch=16)
    return net.eval(), task, xs, ys


def counted(model):
    "FLOPs of one digit through `model`, by FlopCounterMode (attention on its maths kernel: the fused CPU one counts 0)."
    from torch.nn.attention import sdpa_kernel, SDPBackend
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as c: model(torch.zeros(1, 1, 8, 8))
    return c.get_total_flops()


def non_dominated(rows):
    return not any(all(q <= p for q, p in zip(b, a)) and b != a for a in rows for b in rows)


def test_trained_subnetworks_equal_the_supernet_restricted(trained):
    "In float64, so that the gap is rounding only (fp32: a few units in the last place of logits near 5, ~2e-6)."
    net, _, xs, _ = trained
    net = copy.deepcopy(net).double()
    space, rng = SearchSpace(SPACE), random.Random(3)
    archs = [space.decode(space.random(rng)) for _ in range(4)]
    x = xs[:40].double()
    with torch.no_grad():
        together = net(x, archs)
        alone = torch.cat([extract(net, a)(x[10 * i:10 * (i + 1)]) for i, a in enumerate(archs)])
    assert (together - alone).abs().max().item() < 1e-6


def test_one_pass_trains_several_subnetworks(trained):
    "Every sampled sub-network is far above chance (0.1) after multi-architecture training; the smallest is still good."
    net, _, xs, ys = trained
    space, rng = SearchSpace(SPACE), random.Random(5)
    accs = [sub_accuracy(net, space.decode(space.random(rng)), xs, ys) for _ in range(6)]
    smallest = space.decode(tuple(0 for _ in space.genes()))
    assert min(accs) > 0.75, accs
    assert sub_accuracy(net, smallest, xs, ys) > 0.6


def test_evolution_returns_a_pareto_set_under_the_cap(trained):
    net, _, xs, ys = trained
    space = SearchSpace(SPACE)
    cap = 0.5 * flops(SPACE)
    fit = lambda a: sub_accuracy(net, a, xs, ys)
    evo = evolve(space, fit, cap, population=10, iterations=3, parents=4, mutations=5, crossovers=5)
    assert all(0.5 * cap <= d.costs['flops'] <= cap for d in evo.designs)
    assert all(d.costs['flops'] == counted(extract(net, d.arch)) for d in evo.front)   # = FLOPs of the extracted module
    assert non_dominated(evo.objectives(evo.front)) and len(evo.front) >= 1
    rand = random_search(space, fit, cap, evo.n_evals)
    best = lambda s: max(d.accuracy for d in s.designs)
    mean = lambda s: sum(d.accuracy for d in s.designs) / s.n_evals
    assert best(evo) >= mean(rand)       # the search's best beats a typical random design under the same cap
    print(f"evolution best {best(evo):.3f}, random best {best(rand):.3f}, random mean {mean(rand):.3f}, {evo.n_evals} evaluations each")


def test_fake_quantised_subnetworks_are_evaluated(trained):
    "INT8 keeps the accuracy of the fp32 sub-network; each quantised row takes at most 2^b values; bytes shrink."
    net, task, xs, ys = trained
    sub = extract(net, SPACE)
    n = len([m for m in sub.modules() if isinstance(m, torch.nn.Linear)])
    calib = calibration_batches(task)
    acc = lambda m: (m(xs).argmax(-1) == ys).float().mean().item()
    with torch.no_grad():
        fp32 = acc(sub)
        q8, q4 = (calibrate(quantize(sub, (b,) * n), calib) for b in (8, 4))
        a8, a4 = acc(q8), acc(q4)
    for q, b in ((q8, 8), (q4, 4)):
        for m in q.modules():
            if isinstance(m, QuantLinear):
                assert m.act_max > 0
                assert max(len(r.unique()) for r in m.quantized_weight().detach()) <= 2 ** b
    assert abs(a8 - fp32) <= 0.02, (fp32, a8)
    lins = [m for m in sub.modules() if isinstance(m, torch.nn.Linear)]
    # int8 stores each Linear weight in 1 byte instead of 4, plus one fp32 scale per row and the activation range
    assert model_bytes(sub) - model_bytes(q8) == sum(3 * m.weight.numel() - 4 * (m.out_features + 1) for m in lins)
    assert model_bytes(q8) - model_bytes(q4) == sum(m.weight.numel() // 2 for m in lins)   # every in_features is even
    print(f"fp32 {fp32:.3f}, int8 {a8:.3f}, int4 {a4:.3f}; bytes {model_bytes(sub)}, {model_bytes(q8)}, {model_bytes(q4)}")


def test_joint_search_measures_its_front(trained):
    """SimQ-NAS at toy scale: the joint search's designs carry per-Linear bits, its front is measured (remeasuring gives
    the same accuracy and bytes) and is a Pareto set; the baseline's designs are its architecture front, all at INT8.

    Which search reaches the smaller models varies from run to run (measured latency steers the predictors), so it is
    printed, not asserted.
    The paper's stronger claim (a better front than arch-search-then-INT8) we measure, not assert: with 24 evaluations on
    this 250-step super-network the two hypervolumes in (error, bytes) come out within a few hundredths of each other,
    either way round from run to run (0.33-0.38 against 0.36-0.38: measured latency steers the predictors; the joint
    space is 3^18 times larger); the notebook has the 48-evaluation numbers on a better-trained super-network."""
    net, task, xs, ys = trained
    fronts = simq_fronts(net, SearchSpace(SPACE), task, xs, ys, n_evals=24, n_init=12, per_round=6)
    for s in fronts.values():
        assert non_dominated(s.objectives(s.front))
    joint, int8 = fronts['joint'], fronts['arch_then_int8']
    assert joint.n_evals == fronts['random'].n_evals == 24
    assert all(set(d.arch.bits) == {8} for d in int8.designs)
    bench = Bench(net, calibration_batches(task), xs, ys)
    d = joint.front[0]
    again = bench.measure(d.genome, d.arch)
    assert (again.accuracy, again.costs['bytes']) == (d.accuracy, d.costs['bytes'])
    assert any(4 in d.arch.bits for d in joint.designs) and all(len(d.arch.bits) == d.arch.n_linears() for d in joint.designs)
    print(hypervolumes(fronts, ('bytes',)), hypervolumes(fronts), "smallest joint / INT8:",
          min(d.costs['bytes'] for d in joint.front), min(d.costs['bytes'] for d in int8.designs))


def test_hypervolume_of_one_design():
    "One design at error 0.5 and 100 bytes, normalised by 1.1 x itself: a square of side 1 - 1/1.1."
    from neuralcircuits.zoo.compress.vit_resnas import Design, Search
    one = Search([Design((), None, 0.5, dict(bytes=100))], 'one')
    assert abs(hypervolumes(dict(one=one), ('bytes',))['one'] - (1 - 1 / 1.1) ** 2) < 1e-12
