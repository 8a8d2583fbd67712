"""The views without a browser: moving a control puts the selected layer's (token's, head's) values in the figure,
live (ipywidgets + FigureWidget) and in the static page's tables; importing the package loads no plotting library."""
import json, re, subprocess, sys
import pytest, torch
from neuralcircuits import zoo
from neuralcircuits.probe import record, streams, as_stream
from neuralcircuits.widgets import ResidualFlow, AttentionView, DepthMixing, page


@pytest.fixture(scope='module')
def baseline():
    model, x = zoo.tiny('transformer', n_layers=3)
    return record(model, x)


def test_residual_flow_live_controls(baseline):
    flow = ResidualFlow(baseline)
    box = box_ = flow.widget()
    fig = box.figure
    for layer in (2, 0, 1):
        box.sliders['layer'].value = layer
        want = baseline[f'blocks.{layer}']['stream_out'][0].norm(dim=-1)                       # (t,)
        torch.testing.assert_close(torch.tensor(fig.data[3].y), want, atol=1e-6, rtol=0)
        attn = baseline[f'blocks.{layer}.attn']
        torch.testing.assert_close(torch.tensor(fig.data[4].y), attn['write'][0].norm(dim=-1), atol=1e-5, rtol=0)
        assert fig.data[4].name == f'{layer}.attn'
    for token in (0, 7):
        box.sliders['token'].value = token
        want = torch.stack([s[0, token] for s in streams(baseline)]).norm(dim=-1)              # (L+1,)
        torch.testing.assert_close(torch.tensor(fig.data[0].y), want, atol=1e-6, rtol=0)
        final = streams(baseline)[-1][0, token]
        cos = [torch.cosine_similarity(baseline[k]['write'][0, token], final, dim=0)
               for b in baseline.blocks for k in baseline.sublayers[b]]
        torch.testing.assert_close(torch.tensor(fig.data[2].y), torch.stack(cos), atol=1e-5, rtol=0)


def test_attention_view_live_controls(baseline):
    box = AttentionView(baseline).widget()
    for layer, head in ((1, 0), (2, 2), (0, 1)):
        box.sliders['layer'].value, box.sliders['head'].value = layer, head
        want = baseline[f'blocks.{layer}.attn.branch']['weights'][0, head]
        assert torch.equal(torch.tensor(box.figure.data[0].z, dtype=torch.float32), want)
        assert (box.figure.data[2].x, box.figure.data[2].y) == ((head,), (layer,))


def test_depth_mixing_live_controls():
    model, x = zoo.tiny('hyper_connections')
    cache = record(model, x)
    box = DepthMixing(cache).widget()
    box.sliders['layer'].value, box.sliders['token'].value = 3, 4
    assert torch.equal(torch.tensor(box.figure.data[0].z, dtype=torch.float32), cache['blocks.1.mlp']['weights'][0, 4])
    model, x = zoo.tiny('attnres')
    cache = record(model, x)
    box = DepthMixing(cache).widget()
    box.sliders['token'].value = 2
    z = torch.tensor([[float('nan') if v is None else v for v in row] for row in box.figure.data[0].z])
    for i, k in enumerate(cache.mixing):
        w = cache[k]['weights'][0, 2]                                                           # (sources,)
        assert torch.equal(z[i, :len(w)], w) and z[i, len(w):].isnan().all()


def test_static_tables_hold_each_selection(baseline):
    "The page's embedded tables: the entry for 'layer,head' is that head's weights, for 'layer' that block's norms."
    att, flow = AttentionView(baseline), ResidualFlow(baseline)
    html = att.to_html(full_html=False, include_plotlyjs=False)
    spec = json.loads(re.search(r"spec = (\{.*?\}), state", html).group(1))
    assert spec['names'] == ['layer', 'head']
    (trace, props), _ = spec['panels'][0]['table']['2,1']
    assert trace == 0 and torch.equal(torch.tensor(props['z'][0]), baseline['blocks.2.attn.branch']['weights'][0, 1])
    table = flow.tables()[1]['table']['1']
    torch.testing.assert_close(torch.tensor(table[0][1]['y'][0]), baseline['blocks.1']['stream_out'][0].norm(dim=-1))


def test_page_is_self_contained(baseline):
    html = page(ResidualFlow(baseline), AttentionView(baseline))
    assert html.count('* plotly.js v') == 1
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', html)


def test_views_for_every_zoo_entry():
    "Every zoo entry with one residual stream gets a ResidualFlow (a staged network is refused by name); AttentionView and DepthMixing exist where the model records their weights."
    for key in zoo.keys():
        cache = record(*zoo.tiny(key))
        outs = [cache[cache.blocks[0]]['stream_in']] + [cache[b]['stream_out'] for b in cache.blocks]
        if len({t.shape[-1] for t in outs}) > 1:   # a staged network (ConvNeXt's stages change width): refused by name
            with pytest.raises(ValueError, match='the stream changes shape between blocks'): ResidualFlow(cache)
            continue
        if len({as_stream(t).shape[1] for t in outs}) > 1:   # a token-dropping network (IA-RED² at inference): refused by name
            with pytest.raises(ValueError, match='the stream changes length between blocks'): ResidualFlow(cache)
            continue
        assert ResidualFlow(cache).to_html(full_html=False, include_plotlyjs=False)
        if cache.attention: AttentionView(cache).figure()
        if any('weights' in cache[k] or 'res' in cache[k] for k in cache.mixing): DepthMixing(cache).figure()


def test_attention_of_a_pruned_model_leaves_its_removed_heads_blank():
    "OPTIN keeps 3 of 4 heads in its last block: the view pads that layer with NaN, so the grid shows the gap."
    model, x = zoo.tiny('optin')
    view = AttentionView(model, x)
    assert view.weights.shape[:2] == (3, 4)
    assert view.entropy[-1, 3].isnan() and not view.entropy[:, :3].isnan().any() and not view.entropy[:2].isnan().any()
    assert torch.allclose(view.weights[:, :3].sum(-1), torch.ones(3, 3, view.weights.shape[-2]))   # kept heads' rows are distributions


def test_errors_name_the_problem():
    model, x = zoo.tiny('deltanet')
    with pytest.raises(ValueError, match='no attention weights'): AttentionView(model, x)
    with pytest.raises(ValueError, match='no depth-mixing'): DepthMixing(model, x)
    with pytest.raises(ValueError, match='x is missing'): ResidualFlow(model)
    with pytest.raises(ValueError, match="no control 'depth'"): ResidualFlow(model, x).control('depth')


def test_import_stays_light():
    code = ("import sys, neuralcircuits as nc; nc.probe; nc.widgets; "
            "print([m for m in ('plotly', 'ipywidgets', 'anywidget') if m in sys.modules])")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'
