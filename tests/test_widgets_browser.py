"""The widgets in a real browser: live in JupyterLab (a kernel, ipywidgets, plotly FigureWidget) and as a static
page with the network cut off. Headless Chromium through Playwright; screenshots go to tests/artifacts/."""
import json, os, secrets, socket, subprocess, sys, threading, time, urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest, torch

pw = pytest.importorskip('playwright.sync_api')
CHROMIUM = '/usr/bin/chromium'
ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run']
ARTIFACTS = Path(__file__).parent / 'artifacts'
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason='needs /usr/bin/chromium')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def local_only(page, blocked: list):
    "Let the page reach 127.0.0.1 (and the page's own file), abort and note every other request."
    def route(r):
        url = r.request.url
        if url.startswith(('http://127.0.0.1', 'file:', 'data:', 'blob:')): r.continue_()
        else: blocked.append(url); r.abort()
    page.route('**/*', route)


def expected_weights(layer: int, head: int):
    "What the heat map must show: the tiny baseline's recorded attention at (layer, head), batch element 0."
    from neuralcircuits import zoo
    from neuralcircuits.probe import record
    model, x = zoo.tiny('transformer')
    return record(model, x)[f'blocks.{layer}.attn.branch']['weights'][0, head]


@pytest.fixture(scope='module')
def browser():
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def move_slider(page, rail, fraction: float):
    "Click a slider's rail at `fraction` of its length (scrolled into view first)."
    rail.scroll_into_view_if_needed()
    bb = rail.bounding_box()
    page.mouse.click(bb['x'] + bb['width'] * fraction, bb['y'] + bb['height'] / 2)


def test_static_page_offline(browser, tmp_path):
    from neuralcircuits import zoo
    from neuralcircuits.widgets import ResidualFlow, AttentionView, page
    model, x = zoo.tiny('transformer')
    (tmp_path / 'index.html').write_text(page(ResidualFlow(model, x), AttentionView(model, x)))
    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    blocked, errors = [], []
    pg = browser.new_page(viewport={'width': 1200, 'height': 900})
    try:
        local_only(pg, blocked)
        pg.on('pageerror', lambda e: errors.append(str(e)))
        pg.goto(f'http://127.0.0.1:{server.server_port}/index.html')
        pg.wait_for_function("document.querySelectorAll('.js-plotly-plot').length == 2", timeout=20_000)
        flow, att = pg.evaluate("[...document.querySelectorAll('.js-plotly-plot')].map(e => e.id)")
        z = lambda: torch.tensor(pg.evaluate(f"document.getElementById('{att}').data[0].z"))
        torch.testing.assert_close(z(), expected_weights(0, 0), atol=1e-6, rtol=0)
        move_slider(pg, pg.query_selector_all(f'#{att} .slider-rail-touch-rect')[0], 0.97)   # layer 0 -> 1
        pg.wait_for_timeout(300)
        torch.testing.assert_close(z(), expected_weights(1, 0), atol=1e-6, rtol=0)
        move_slider(pg, pg.query_selector_all(f'#{att} .slider-rail-touch-rect')[1], 0.5)    # head 0 -> 1
        pg.wait_for_timeout(300)
        torch.testing.assert_close(z(), expected_weights(1, 1), atol=1e-6, rtol=0)
        y = lambda: pg.evaluate(f"document.getElementById('{flow}').data[0].y")
        before = y()
        move_slider(pg, pg.query_selector_all(f'#{flow} .slider-rail-touch-rect')[0], 0.0)   # token 11 -> 0
        pg.wait_for_timeout(300)
        assert y() != before
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / 'widgets_static.png'), full_page=True)
    finally:
        pg.close(); server.shutdown()
    assert not errors, errors
    assert not blocked, f"the static page wanted the network: {blocked}"


NOTEBOOK = {'cells': [
    {'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'outputs': [], 'source':
     "from neuralcircuits import zoo\nfrom neuralcircuits.widgets import ResidualFlow, AttentionView\n"
     "model, x = zoo.tiny('transformer')\nResidualFlow(model, x)"},
    {'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'outputs': [], 'source': "AttentionView(model, x)"}],
    'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
    'nbformat': 4, 'nbformat_minor': 5}


@pytest.fixture()
def lab(tmp_path):
    "JupyterLab on 127.0.0.1, a free port and a token, rooted in a temporary folder holding widgets.ipynb."
    (tmp_path / 'widgets.ipynb').write_text(json.dumps(NOTEBOOK))
    settings = tmp_path / 'settings' / '@jupyterlab' / 'apputils-extension'   # no "get Jupyter news?" toast
    settings.mkdir(parents=True)
    (settings / 'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false'}))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--allow-root', '--ip=127.0.0.1', f'--port={port}',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp_path}', '--LabApp.news_url=None',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--LabApp.expose_app_in_browser=True']
    log = open(tmp_path / 'lab.log', 'w')
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ, 'PYTHONUNBUFFERED': '1', 'JUPYTERLAB_SETTINGS_DIR': str(tmp_path / 'settings')})
    url = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=1); break
            except OSError: time.sleep(0.5)
        else: raise RuntimeError(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
        yield url, token
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


def test_live_widgets_in_jupyterlab(browser, lab):
    url, token = lab
    blocked, errors = [], []
    pg = browser.new_page(viewport={'width': 1300, 'height': 1000})
    try:
        local_only(pg, blocked)
        pg.on('pageerror', lambda e: errors.append(str(e)))
        pg.goto(f'{url}/lab/tree/widgets.ipynb?token={token}')
        pg.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
        pg.wait_for_function("""(() => { const w = window.jupyterapp.shell.currentWidget;
            return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel
                   && w.sessionContext.session.kernel.status === 'idle'; })()""", timeout=60_000)
        pg.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        plots = '.jp-OutputArea .js-plotly-plot'
        pg.wait_for_function(f"""document.querySelectorAll('{plots}').length == 2
            || document.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')""", timeout=90_000)
        tracebacks = pg.evaluate("""[...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                                    .map(e => e.innerText)""")
        assert not tracebacks, tracebacks
        pg.wait_for_function(f"[...document.querySelectorAll('{plots}')].every(g => g.querySelector('.trace') && g.querySelector('.hm'))",
                             timeout=60_000)   # both figures drawn: their traces and heat maps
        gd = f"document.querySelectorAll('{plots}')[1]"
        z = lambda: torch.tensor(pg.evaluate(f"{gd}.data[0].z"))
        torch.testing.assert_close(z(), expected_weights(0, 0), atol=1e-6, rtol=0)
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / 'widgets_lab_before.png'))
        # the second output's first slider is AttentionView's layer control: focus its handle, step right
        handle = pg.query_selector_all('.jp-OutputArea-output')[1].query_selector_all('.noUi-handle')[0]
        handle.scroll_into_view_if_needed()
        handle.focus()
        pg.keyboard.press('ArrowRight')
        pg.wait_for_function(f"{gd}.data[0].z[0].length && Math.abs({gd}.data[0].z[5][0] - {float(expected_weights(1, 0)[5, 0])}) < 1e-6",
                             timeout=20_000)
        torch.testing.assert_close(z(), expected_weights(1, 0), atol=1e-6, rtol=0)
        pg.screenshot(path=str(ARTIFACTS / 'widgets_lab_after.png'))
    finally: pg.close()
    assert not errors, errors
