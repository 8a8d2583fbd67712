"""The compress family's 'must show' claims (PAPERS.md P01, P06, P21, P23, P40) on the shipped trained models."""
import pytest, torch
from torch import nn
from neuralcircuits.zoo.compress.trained import trained, task_of, held_out, accuracy


@pytest.fixture(scope='module')
def digits():
    task = task_of('vit-digits')
    return task, *held_out(task)


def permute(model, seed=0):
    "A copy of a ViT with residual channels, heads, q/k (jointly) and v dims, and MLP units permuted."
    g = torch.Generator().manual_seed(seed)
    cfg, sd = model.cfg, {k: v.clone() for k, v in model.state_dict().items()}
    m, h, k = cfg.d_model, cfg.n_heads, cfg.d_head
    r = torch.randperm(m, generator=g)
    for key in list(sd):
        if key in ('cls', 'pos.weight'): sd[key] = sd[key][..., r]
        elif key.endswith(('norm.weight', 'norm.bias', 'branch.out.bias', 'branch.down.bias')) or key.startswith('patches.proj'): sd[key] = sd[key][r]
        elif key == 'head.weight': sd[key] = sd[key][:, r]
    for i in range(cfg.n_layers):
        p = f'blocks.{i}.'
        heads = torch.randperm(h, generator=g)
        qk = torch.cat([heads[j] * k + torch.randperm(k, generator=g) for j in range(h)])
        vv = torch.cat([heads[j] * k + torch.randperm(k, generator=g) for j in range(h)])
        rows = torch.cat([qk, m + qk, 2 * m + vv])
        sd[p + 'attn.branch.qkv.weight'] = sd[p + 'attn.branch.qkv.weight'][rows][:, r]
        sd[p + 'attn.branch.qkv.bias'] = sd[p + 'attn.branch.qkv.bias'][rows]
        sd[p + 'attn.branch.out.weight'] = sd[p + 'attn.branch.out.weight'][r][:, vv]
        f = torch.randperm(cfg.mlp_width, generator=g)
        sd[p + 'mlp.branch.up.weight'] = sd[p + 'mlp.branch.up.weight'][f][:, r]
        sd[p + 'mlp.branch.up.bias'] = sd[p + 'mlp.branch.up.bias'][f]
        sd[p + 'mlp.branch.down.weight'] = sd[p + 'mlp.branch.down.weight'][r][:, f]
    copy = type(model)(cfg).to(sd['cls'].dtype); copy.load_state_dict(sd)
    return copy.eval()


def test_otfusion_with_a_permuted_copy_returns_the_model(digits):
    from neuralcircuits.zoo.compress.otfusion import ot_fuse
    task, x, y = digits
    a = trained('vit-digits').double()
    copy = permute(a)
    calib = task.split['train'][0][:200].double()
    with torch.no_grad():
        assert (copy(x.double()) - a(x.double())).abs().max() < 1e-9          # the same function
        fused = ot_fuse(a, copy, calib, reg=0.0)
        assert (fused(x.double()) - a(x.double())).abs().max() < 1e-9       # float64: only rounding is left


def test_otfusion_beats_vanilla_averaging(digits):
    from neuralcircuits.zoo.compress.otfusion import ot_fuse, vanilla_fuse
    task, x, y = digits
    a, b = trained('vit-digits'), trained('vit-digits-b')
    calib = task.split['train'][0][:200]
    vanilla, emd, soft = (accuracy(m, x, y) for m in (vanilla_fuse(a, b), ot_fuse(a, b, calib, 0.0), ot_fuse(a, b, calib, 0.03)))
    # measured when written: vanilla 0.135, EMD 0.360, Sinkhorn(0.03) 0.428 on the 297 held-out digits
    assert emd > vanilla + 0.1 and soft > vanilla + 0.1, (vanilla, emd, soft)


def test_heterogeneous_fusion_has_the_anchors_shapes(digits):
    from neuralcircuits.zoo.compress.otfusion import ot_fuse
    task, x, y = digits
    narrow = trained('vit-digits')
    fused = ot_fuse(trained('vit-digits-wide'), narrow, task.split['train'][0][:200], reg=0.0)
    assert {k: v.shape for k, v in fused.state_dict().items()} == {k: v.shape for k, v in narrow.state_dict().items()}
    assert accuracy(fused, x, y) > 0.2                                        # above chance (0.1): the alignment carries signal


def test_adaptertune_starts_at_the_pretrained_function():
    from neuralcircuits.zoo.compress.adaptertune import adapt
    backbone = trained('vit-digits-04')
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad(): assert torch.equal(adapt(backbone, rank=8)(x), backbone(x))


def test_ast_backbone_frozen_and_zero_init_methods_exact():
    from neuralcircuits.zoo.compress.ast_petl import petl, trainable
    backbone = trained('ast-sounds')
    x = torch.randn(4, 1, 32, 51, generator=torch.Generator().manual_seed(0))
    kept = {n for n in backbone.state_dict() if not n.startswith(('norm.', 'head.'))}
    with torch.no_grad(): ref = backbone(x)
    for method in ('pfeiffer-parallel', 'houlsby-sequential', 'conformer', 'lora'):
        m = petl(backbone, method, 4).eval()
        assert not any(p.requires_grad for n, p in m.named_parameters() if n in kept), method
        assert trainable(m) > 0
        with torch.no_grad(): assert torch.equal(m(x), ref), method


def test_reparam_merge_is_exact_and_shallower():
    from neuralcircuits import zoo
    from neuralcircuits.zoo.compress.reparam_vit import merge
    torch.manual_seed(0)
    model = zoo.build('reparam_vit', image_size=8, patch_size=2, channels=1, n_classes=10, d_model=32, n_layers=2, n_heads=4, n_branches=2).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if 'norms' in n: p.copy_(torch.randn_like(p))
        x = torch.randn(8, 1, 8, 8)
        merged = merge(model)
        assert (merged(x) - model(x)).abs().max() < 1e-5                      # fp32, sums in another order
    linears = lambda m: sum(isinstance(mod, nn.Linear) for mod in m.blocks.modules())
    assert linears(merged) * 2 == linears(model)


def test_int8_ptq_keeps_accuracy_and_quarters_the_weights(digits):
    from neuralcircuits.zoo.compress.inference_opt import quantize, calibrate, n_bytes
    task, x, y = digits
    vit = trained('vit-digits')
    ptq = calibrate(quantize(vit), task.split['train'][0][:256])
    assert abs(accuracy(ptq, x, y) - accuracy(vit, x, y)) <= 0.01
    assert n_bytes(ptq) < 0.4 * n_bytes(vit)
