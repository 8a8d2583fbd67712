"""The contract every registered architecture is held to (DESIGN.md, "One architecture, one notebook").

Adding an architecture adds a row here: the tests walk `zoo.keys()`, nothing lists the keys by hand.
"""
import dataclasses, inspect, re
from pathlib import Path
import pytest, torch
from neuralcircuits import zoo

NBS = Path(__file__).parents[1] / 'nbs'
KEYS = zoo.keys()


def tensors(out):
    "Every floating tensor in a model output (tensor, tuple, dict or dataclass)."
    if isinstance(out, torch.Tensor): return [out] if out.is_floating_point() or out.is_complex() else []
    if isinstance(out, dict): out = list(out.values())
    elif dataclasses.is_dataclass(out): out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    if isinstance(out, (list, tuple)): return [t for o in out for t in tensors(o)]
    return []


def run(model, x):
    return model(*x) if isinstance(x, tuple) else model(**x) if isinstance(x, dict) else model(x)


def test_zoo_has_the_baselines():
    assert {'transformer', 'vit'} <= set(KEYS)


@pytest.mark.parametrize('key', KEYS)
def test_forward_and_backward(key):
    model, x = zoo.tiny(key)
    outs = tensors(run(model, x))
    assert outs, f"{key}: the model returned no floating tensor"
    assert all(torch.isfinite(o).all() for o in outs), f"{key}: non-finite output"
    sum(o.float().sum() for o in outs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), f"{key}: no gradient reached the parameters"
    assert all(torch.isfinite(g).all() for g in grads if g is not None), f"{key}: non-finite gradient"


@pytest.mark.parametrize('key', KEYS)
def test_deterministic_under_seed(key):
    (m1, x1), (m2, x2) = zoo.tiny(key, seed=3), zoo.tiny(key, seed=3)
    for (n, p1), p2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(p1, p2), f"{key}: parameter {n} differs between two builds with seed 3"
    m1.eval(); m2.eval()
    with torch.no_grad():
        for a, b in zip(tensors(run(m1, x1)), tensors(run(m2, x2))): assert torch.equal(a, b)
    assert any(not torch.equal(p, q) for p, q in zip(m1.parameters(), zoo.tiny(key, seed=4)[0].parameters())), \
        f"{key}: the seed does not reach the initialisation"


@pytest.mark.parametrize('key', KEYS)
def test_has_a_docs_page(key):
    "The architecture's module is exported from a notebook that cites its paper."
    e = zoo.entry(key)
    module = Path(inspect.getfile(e.model))
    m = re.search(r'File to edit: (\S+\.ipynb)', module.read_text())
    assert m, f"{key}: {e.model.__module__} is not exported from a notebook"
    nb = (module.parent / m[1]).resolve()
    assert nb.is_relative_to(NBS.resolve()) and nb.exists(), f"{key}: notebook {nb} is missing"
    text = nb.read_text()
    assert e.paper.arxiv_id in text, f"{key}: {nb.name} does not cite arXiv {e.paper.arxiv_id}"
    assert not nb.name.startswith('_'), f"{key}: {nb.name} is hidden from the docs site"


@pytest.mark.parametrize('key', KEYS)
def test_bad_overrides_rejected(key):
    e = zoo.entry(key)
    with pytest.raises(ValueError, match='no_such_field'): zoo.build(key, no_such_field=1)
    size = next(f.name for f in dataclasses.fields(e.tiny)
                if type(getattr(e.tiny, f.name)) is int and f.metadata.get('min', 1) >= 1)
    with pytest.raises(ValueError, match=size): zoo.tiny(key, **{size: -2})


@pytest.mark.parametrize('key', KEYS)
def test_tiny_is_small(key):
    "Tiny configs stay tiny, so the whole contract runs in seconds."
    assert zoo.entry(key).n_params(zoo.entry(key).tiny) < 2_000_000


def test_unknown_key_lists_closest():
    with pytest.raises(KeyError, match="closest: 'transformer'"): zoo.build('transfomer')


def test_table_lists_every_key():
    t = zoo.table()
    assert [r['key'] for r in t] == KEYS
    assert all(r['params'] > 0 and r['tiny_params'] > 0 for r in t)


@pytest.mark.parametrize('key', KEYS)
def test_diagram_is_complete_and_renders(key):
    "Tracing leaves the output bit-identical, the recorded ops replay it bit-identically, and the diagram renders."
    from neuralcircuits.circuits import check_traceable
    model, x = zoo.tiny(key)
    d = check_traceable(model.eval(), x)
    assert '<svg' in d.svg and len(d.ir.ops) > 0


def test_the_zoo_stays_light():
    "Listing the zoo imports every entry's module, but none of the heavy optional libraries an entry uses only when it runs."
    import subprocess, sys
    code = ("import sys, neuralcircuits as nc; nc.zoo.table(); "
            "print([m for m in ('ot', 'sklearn', 'plotly', 'ipywidgets', 'transformers', 'networkx', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]', out
