"""The docs site in a browser: build it, serve it on 127.0.0.1, open every page in headless Chromium with no network.

The pages to expect come from nbs/ (every notebook nbdev's glob finds: no `_` or `.` names or folders), not from a
list here. One session fixture builds and visits the site once; the tests read what the visit recorded.
"""
import functools, http.server, threading, time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from nbdev.doclinks import nbglob, _nbpath2html

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
ARTIFACTS = ROOT/'tests'/'artifacts'
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
LOCAL_SCHEMES = ('data:', 'blob:', 'about:')


def notebook_pages() -> dict:
    "Each notebook of the site, relative to nbs/, and the page nbdev names after it (`00_core.ipynb` -> `core.html`)."
    rels = sorted(Path(p).relative_to(NBS) for p in nbglob(NBS, skip_folder_re=r'(?:^[_.]|^www$)'))
    return {r.as_posix(): _nbpath2html(r).as_posix() for r in rels}


PAGES = notebook_pages()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope='session')
def site(tmp_path_factory):
    from neuralcircuits.docs_site import build_docs
    t0 = time.perf_counter()
    out = build_docs(tmp_path_factory.mktemp('docs')/'site')
    print(f"\ndocs site built in {time.perf_counter() - t0:.1f} s")
    return out


@pytest.fixture(scope='session')
def server(site):
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()
    httpd.server_close()


# Read in the page after it loaded: its title and first heading, the sidebar's links, and what the outputs drew.
_PAGE_STATE = """() => {
  const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const h1 = document.querySelector('h1');
  return {
    title: document.title,
    h1: h1 ? h1.textContent.trim() : '',
    sidebar: [...document.querySelectorAll('#quarto-sidebar a[href]')].map(a => a.href),
    svgs: [...document.querySelectorAll('.cell-output-display svg')].filter(s => !s.closest('.plotly-graph-div')).map(box),
    maths: [...document.querySelectorAll('math')].map(box),
    tex_left: (() => { const b = document.body.cloneNode(true);  // TeX delimiters left in the prose, code aside
      b.querySelectorAll('pre, code, script, style').forEach(e => e.remove());
      return (b.textContent.match(/\\\\\\(|\\\\\\[/g) || []).length; })(),
    plots: [...document.querySelectorAll('.plotly-graph-div')].map(d => d.querySelectorAll('.main-svg').length),
    outputs: document.querySelectorAll('.cell-output').length,
  };
}"""


@pytest.fixture(scope='session')
def visit(server, tmp_path_factory):
    "Open the home page and every notebook page once; record statuses, page state, JS errors and every request."
    from playwright.sync_api import sync_playwright
    requested, blocked, errors, pages = [], [], {}, {}

    def route(r):
        url = r.request.url
        if url.startswith(LOCAL_SCHEMES) or urlparse(url).hostname == '127.0.0.1': r.continue_()
        else: blocked.append(url); r.abort()

    t0 = time.perf_counter()
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path_factory.mktemp('chromium-profile')), executable_path=CHROMIUM,
                                                   headless=True, args=CHROMIUM_ARGS, viewport={'width': 1280, 'height': 900})
        ctx.route('**/*', route)
        ctx.on('request', lambda req: requested.append(req.url))
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        current = {'url': None}
        page.on('pageerror', lambda e: errors.setdefault(current['url'], []).append(str(e)))
        for rel in ['index.html', *sorted(set(PAGES.values()) - {'index.html'})]:
            current['url'] = url = urljoin(server, rel)
            resp = page.goto(url, wait_until='load')
            page.wait_for_timeout(50)  # let deferred scripts run
            pages[rel] = {'status': resp.status if resp else None, **page.evaluate(_PAGE_STATE)}
            if rel == 'index.html':
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS/'docs_home.png'))
        ctx.close()
    print(f"\nvisited {len(pages)} pages in {time.perf_counter() - t0:.1f} s")
    return {'server': server, 'pages': pages, 'requested': requested, 'blocked': blocked, 'errors': errors}


def test_pages_come_from_nbs():
    assert 'index.ipynb' in PAGES, "nbs/index.ipynb is the home page (and README.md)"
    assert all(not part.startswith(('_', '.')) for nb in PAGES for part in Path(nb).parts)
    assert 'docs_site.ipynb' in PAGES and PAGES['docs_site.ipynb'] == 'docs_site.html'


def test_home_page(visit):
    home = visit['pages']['index.html']
    assert home['status'] == 200
    assert home['h1'] and 'neuralcircuits' in home['title'], home
    assert visit['errors'].get(urljoin(visit['server'], 'index.html'), []) == []
    assert (ARTIFACTS/'docs_home.png').stat().st_size > 10_000  # a real screenshot, not a blank page


@pytest.mark.parametrize('nb', sorted(PAGES))
def test_notebook_page_loads(visit, nb):
    rel = PAGES[nb]
    got = visit['pages'][rel]
    assert got['status'] == 200, f"{nb} -> {rel}: HTTP {got['status']}"
    assert got['title'].strip() and got['h1'], f"{rel} has no title or heading: {got['title']!r} {got['h1']!r}"
    assert visit['errors'].get(urljoin(visit['server'], rel), []) == [], f"{rel}: JS errors"


def test_sidebar_lists_every_page(visit):
    want = {urljoin(visit['server'], rel) for rel in PAGES.values()}
    for rel, got in visit['pages'].items():
        listed = {u.split('#')[0] for u in got['sidebar']}
        assert want <= listed, f"the sidebar of {rel} misses {sorted(want - listed)}"


def test_outputs_show(visit):
    "Diagrams (SVG outputs), maths (MathML) and plotly figures are drawn with a size, whatever pages hold them."
    for rel, got in visit['pages'].items():
        assert all(w > 0 and h > 0 for w, h in got['svgs']), f"{rel}: an SVG output has no size: {got['svgs']}"
        assert all(w > 0 and h > 0 for w, h in got['maths']), f"{rel}: a formula has no size"
        assert got['tex_left'] == 0, f"{rel}: TeX left untypeset"
        assert all(n > 0 for n in got['plots']), f"{rel}: a plotly figure was not drawn"


def test_nothing_requested_outside(visit):
    outside = [u for u in visit['requested'] if not u.startswith(LOCAL_SCHEMES) and urlparse(u).hostname != '127.0.0.1']
    assert outside == [] and visit['blocked'] == [], outside or visit['blocked']
    assert len(visit['requested']) > len(visit['pages'])  # pages, and their scripts and styles, all from the site
