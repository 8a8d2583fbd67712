"The zoo contract for diagrams: every entry traces bit-identically, replays, and renders (`check_traceable`)."
import pytest, torch
from neuralcircuits import zoo
from neuralcircuits.circuits import check_traceable

torch.set_num_threads(1)

@pytest.mark.parametrize('key', zoo.keys())
def test_every_zoo_entry_is_traceable(key):
    model, x = zoo.tiny(key)
    d = check_traceable(model, x)
    assert d.ir.ops, f"{key}: no ops recorded"
    assert 'cluster' in d.dot or len(d.ir.ops) < 5
