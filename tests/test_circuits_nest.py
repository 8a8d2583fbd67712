"""Diagrams that fit a page: every figure of every zoo entry's default diagram is legible in an 800 px column,
AttnRes draws each distinct module once, loops fold at any length, and boxes open in place."""
import re
import pytest, torch
from neuralcircuits import zoo
from neuralcircuits.circuits import diagram
from neuralcircuits.circuits.nest import WIDTH, smallest_label, svg_size

torch.set_num_threads(1)
from neuralcircuits.circuits.nest import COLUMN, LEGIBLE


def legibility(d) -> list[tuple[float, float]]:
    "(width in pt, smallest label in px when scaled whole into the column) for each figure."
    return [(svg_size(f.svg)[0], smallest_label(f.svg, COLUMN)) for f in d.figures]


@pytest.mark.parametrize('key', zoo.keys())
def test_every_figure_is_legible_in_a_page_column(key):
    model, x = zoo.tiny(key)
    rows = legibility(diagram(model.eval(), x))
    print(key, [(round(w), round(px, 1)) for w, px in rows])
    assert all(px >= LEGIBLE for _, px in rows), f"{key}: a figure's smallest label is under {LEGIBLE} px: {rows}"


def test_smallest_label_reads_the_svg():
    "The measure itself: a 9 pt label in a 1000 pt wide figure shown in 800 px is 7.2 px; narrow figures are not enlarged."
    svg = lambda w: f'<svg viewBox="0.00 0.00 {w} 100.00"><text font-size="9.00">a</text><text font-size="12.00">b</text></svg>'
    assert smallest_label(svg(1000), 800) == pytest.approx(7.2)
    assert smallest_label(svg(300), 800) == pytest.approx(12.0)     # shown at its natural size: 9 pt = 12 px


def test_attnres_draws_each_distinct_module_once():
    d = diagram(*zoo.tiny('attnres'))
    kinds = [f.cls for f in d.figures]
    assert kinds == ['', 'Block', 'DepthRead', 'AttnResidual']   # the model, the block, the depth read, the extending sublayer
    assert all(f.width <= WIDTH for f in d.figures)
    assert len(d.figures[0].dot.split('DepthRead')) - 1 == 1 and 'see figure 3' in d.dot
    top = d.figures[0].dot
    assert 'Block ) &#215;3' in top and 'axis 2 = 1, 2, 3 entering' in top     # one fold, its difference as a label
    assert 'as in the baseline' in d.figure('blocks.0').dot                   # the baseline's attention is not redrawn


def test_a_figure_is_found_from_every_place_its_module_is_used():
    model, x = zoo.tiny('transformer', n_layers=4)
    d = diagram(model, x)
    assert {d.figure(f'blocks.{i}.attn.branch').number for i in range(4)} == {d.figure('blocks.0.attn.branch').number}
    assert d.figure('').block is None
    with pytest.raises(KeyError, match="no figure draws the module at path 'blocks.9'"): d.figure('blocks.9')


def test_depth_fixes_how_much_each_figure_opens():
    model, x = zoo.tiny('transformer')
    assert len(diagram(model, x, depth=9).figures) == 1            # everything open: one picture
    assert [f.cls for f in diagram(model, x, depth=0).figures][:2] == ['', 'Block']


@pytest.mark.parametrize('length', [8, 24])
def test_a_token_loop_folds_into_one_step_at_any_length(length):
    from neuralcircuits.zoo.residual.recurrent_transformer import set_form
    model, x = zoo.tiny('recurrent_transformer', max_len=length)
    d = diagram(set_form(model, 'naive'), x)
    loops = [b for b in d.tree.blocks() if b.attrs.get('loop')]
    assert [b.count for b in loops] == [length - 1]                # the first step has no cache yet: drawn before the loop
    step = next(f for f in d.figures if f.block is loops[0])
    assert 'style=dashed' in step.dot and 'constraint=false' in step.dot   # the carried keys and values wire back
    assert all(px >= LEGIBLE for _, px in legibility(d))


def test_boxes_open_in_place():
    d = diagram(*zoo.tiny('attnres'))
    html = d._repr_html_()
    top = d.figures[0]
    assert html.count('<figure class="nc-figure"') == len(d.figures)
    for nid in top.boxes: assert f'<template data-node="{nid}">' in html      # each closed box has its opened drawing
    assert 'nc-collapse' in html and 'addEventListener' in html
    live = re.sub(r'<template.*?</template>', '', html, flags=re.S)         # what the page holds outside the templates
    ids = re.findall(r' id="([^"]+)"', live)
    assert len(ids) == len(set(ids)), "element ids repeat on the page"
    assert len(set(re.findall(r'<div class="nc-diagram" id="([^"]+)"', d._repr_html_() + html))) == 2   # two outputs, two ids


def test_hover_text_names_the_op_and_its_wires():
    d = diagram(*zoo.tiny('transformer'))
    svg = d.figure('blocks.0.attn.branch').svg
    tips = re.findall(r'<title>([^<]*)</title>', svg)
    att = [t for t in tips if t.startswith('Attention: scaled_dot_product_attention')]
    assert len(att) == 4 and 'in:  b h t k = 2x3x12x16' in att[0]        # the four nodes of the attention box, one text
    assert not any('&#45;&gt;' in t for t in tips)                          # wires carry no internal node names


def _third_party() -> dict:
    "The gallery's models by other people, from small configs (no weights), with an example input."
    ids = torch.randint(100, (2, 7), generator=torch.Generator().manual_seed(0))
    models = {'torch.nn.Transformer': (torch.nn.Transformer(32, 4, 2, 2, 64, batch_first=True).eval(),
                                       (torch.randn(2, 6, 32), torch.randn(2, 5, 32)))}
    try:
        from x_transformers import TransformerWrapper, Decoder
        models['x-transformers'] = (TransformerWrapper(num_tokens=100, max_seq_len=32, attn_layers=Decoder(dim=32, depth=3, heads=4)).eval(), ids)
    except ImportError: pass
    try: import transformers as hf
    except ImportError: return models
    small = dict(vocab_size=100, use_cache=False)
    models['gpt2'] = (hf.GPT2LMHeadModel(hf.GPT2Config(n_embd=32, n_layer=3, n_head=4, n_positions=32, bos_token_id=0, eos_token_id=0, **small)).eval(), ids)
    models['llama'] = (hf.LlamaForCausalLM(hf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                                                          num_key_value_heads=2, max_position_embeddings=64, **small)).eval(), ids)
    models['bert'] = (hf.BertModel(hf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                                 max_position_embeddings=32, vocab_size=100)).eval(), ids)
    return models

THIRD_PARTY = _third_party()

@pytest.mark.parametrize('name', list(THIRD_PARTY))
def test_other_peoples_models_are_legible_too(name):
    model, x = THIRD_PARTY[name]
    rows = legibility(diagram(model, x))
    print(name, [(round(w), round(px, 1)) for w, px in rows])
    assert all(px >= LEGIBLE for _, px in rows), f"{name}: a figure's smallest label is under {LEGIBLE} px: {rows}"


def test_every_box_of_the_baseline_points_at_its_source_line():
    "Hover text of every op box names the file and line that issued it, and the line is the file's own text."
    import inspect
    d = diagram(*zoo.tiny('transformer'))
    ops = {f"o{o.id}": o for o in d.ir.ops}
    boxes = [(nid, tip) for f in d.figures for nid, tip in f.tips.items() if nid in ops]
    assert len(boxes) >= 15
    for nid, tip in boxes:
        file, line, code = ops[nid].src
        assert f"{file}:{line}\n    {code}" in tip, (nid, tip)
        assert open(file).read().splitlines()[line - 1].strip() == code
    for f in d.figures:
        for nid, b in f.boxes.items():                        # a module's box: where it is defined and where it is called
            assert 'defined at ' in f.tips[nid] and 'called at ' in f.tips[nid]
