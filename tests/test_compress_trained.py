"""The trained tiny models shipped in neuralcircuits/weights reach their stated accuracy (nbs/zoo/compress/trained.ipynb)."""
import configparser
from pathlib import Path
import pytest, torch
from neuralcircuits.zoo.compress.trained import TRAINED, WEIGHTS, trained, evaluate, lookup
from neuralcircuits.train.jobs import check

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize('name', sorted(TRAINED))
def test_stored_weights_reach_the_stated_accuracy(name):
    t = lookup(name)
    assert t.weights_path.stat().st_size < 2 * 10**6, f"{name}: weights over 2 MB"
    acc = evaluate(name)
    # the stated number has 4 decimals; 0.005 leaves room for one near-tie prediction flipping under another BLAS
    assert abs(acc - t.accuracy) < 0.005, f"{name}: accuracy {acc:.4f}, stated {t.accuracy:.4f}"


@pytest.mark.parametrize('name', sorted(TRAINED))
def test_config_is_a_job_nc_train_accepts(name):
    job = lookup(name).job
    check(job)                                   # data, model and batch all valid, nothing trained
    assert job.out_dir == f'runs/trained/{name}'


def test_loaded_model_is_frozen_in_eval_mode_and_deterministic():
    a, b = trained('vit-digits'), trained('vit-digits')
    assert not a.training
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), trained('vit-digits-b')(x))


def test_unknown_name_is_refused_by_name():
    with pytest.raises(ValueError, match="closest: 'vit-digits'"): trained('vit-digit')
    with pytest.raises(TypeError, match='name must be'): trained(3)


def test_weights_are_package_data():
    "setup.py ships weights/*.safetensors and their configs in the wheel."
    assert WEIGHTS.parent.name == 'neuralcircuits'
    setup = (ROOT / 'setup.py').read_text()
    assert "'weights/*.safetensors'" in setup and "'weights/*.json'" in setup
    manifest = (ROOT / 'MANIFEST.in').read_text()
    assert 'recursive-include neuralcircuits/weights' in manifest
