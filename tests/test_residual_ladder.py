"""Ladder residual under tensor parallelism: 2 gloo processes on CPU (127.0.0.1, a free port) with async all-reduce
equal the single-process model, and every all-reduce is waited for only after the next sublayer started computing."""
import pytest, torch
from neuralcircuits import zoo
from neuralcircuits.zoo.residual.ladder import LadderLM, run_tensor_parallel, ladder, standard, sublayers

# fp32; each rank sums its share of heads / hidden units, the all-reduce adds the two shares: a different order of
# the same additions as one process, so agreement to rounding (observed ~2e-7 on logits of size ~1).
TOL = 1e-5


def overlapped(log):
    at = {e: i for i, e in enumerate(log)}
    last = max(k for _, k in log)
    return [at[('wait', k)] > at[('compute', k + 1)] for k in range(last)]


def test_two_gloo_ranks_match_one_process():
    """One spawn (each costs seconds): the converted upper half of a GPT-2-style model (biases, LayerNorm, GELU, learned
    positions) covers both schedules and the bias handling; the all-ladder Llama-style tiny runs in the notebook."""
    model, x = zoo.tiny('ladder', seed=1, ladder_from=2, bias=True, norm='layer', mlp='gelu', pos='learned')
    model.eval()
    with torch.no_grad(): ref = model(x)
    results = run_tensor_parallel(model, x, world=2)
    split = 2 * model.cfg.ladder_from                        # sublayers below this run the standard schedule
    for rank, res in enumerate(results):
        err = (res['logits'] - ref).abs().max().item()
        assert err < TOL, f"rank {rank}: max |tensor-parallel - single process| = {err:.2e} > {TOL}"
        flags = overlapped(res['log'])
        assert all(flags[split:]), f"rank {rank}: a ladder all-reduce was waited for before the next sublayer started"
        assert not any(flags[:split]), f"rank {rank}: the standard lower half should wait before the next sublayer"


def test_schedules_agree_when_outputs_vanish():
    "With every branch's output zero, both schedules are the identity: the ladder only moves where outputs are added."
    model, _ = zoo.tiny('ladder')
    for r in sublayers(model.blocks):
        for p in r.branch.parameters(): torch.nn.init.zeros_(p)
    h = torch.randn(2, 9, model.cfg.d_model)
    assert torch.equal(ladder(sublayers(model.blocks), h), h) and torch.equal(standard(sublayers(model.blocks), h), h)
