"""The docs site in a browser: build it, serve it on 127.0.0.1, open every page in headless Chromium with no network.

The pages to expect come from nbs/ (every notebook nbdev's glob finds: no `_` or `.` names or folders) and the zoo
entries from `zoo.table()`, not from a list here. One session fixture builds the site once and one test visits it
(pytest-xdist would build it once per worker otherwise); the bars it holds the site to:

- every page loads with a title and a heading, no JavaScript error and no console error, in a sidebar that lists
  every page; nothing is requested from anywhere but 127.0.0.1;
- every zoo entry's page and the gallery show at least one visible SVG diagram inside the content column, and the
  control on a diagram opens it full size with zoom;
- every plotly figure draws, and plotly.js is one file for the whole site;
- search finds "deltanet" on the served site; the catalogue lists every key of `zoo.table()`;
- no internal link or anchor is broken.
"""
import contextlib, functools, http.server, json, re, shutil, threading, time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from nbdev.doclinks import nbglob, _nbpath2html

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
ARTIFACTS = ROOT/'tests'/'artifacts'
CHROMIUM = next((c for c in ('/usr/bin/chromium', shutil.which('chromium'), shutil.which('chromium-browser'), shutil.which('google-chrome'))
                 if c and Path(c).exists()), '/usr/bin/chromium')  # Debian's chromium; other browsers of the same engine elsewhere
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


@contextlib.contextmanager
def serve(directory: Path):
    "Serve `directory` on 127.0.0.1 at an ephemeral port, in a thread; yields the base URL."
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    finally:
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
    diagrams: (() => { const main = document.querySelector('main') || document.body, m = main.getBoundingClientRect();
      return [...main.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg') && !s.closest('.plotly-graph-div, .nc-open'))
        .map(s => { const r = s.getBoundingClientRect();
          return {w: r.width, h: r.height, inside: r.left >= m.left - 1 && r.right <= m.right + 1, open: !!s.previousElementSibling &&
                  s.previousElementSibling.classList.contains('nc-open')}; }); })(),
    cards: [...document.querySelectorAll('.nc-catalogue .nc-card')].map(c => c.id),
    ran: [...document.querySelectorAll('.nc-diagram')].map(d => d.dataset.ran || ''),
    maths: [...document.querySelectorAll('math')].map(box),
    tex_left: (() => { const b = document.body.cloneNode(true);  // TeX delimiters left in the prose, code aside
      b.querySelectorAll('pre, code, script, style').forEach(e => e.remove());
      return (b.textContent.match(/\\\\\\(|\\\\\\[/g) || []).length; })(),
    plots: [...document.querySelectorAll('.plotly-graph-div')].map(d => d.querySelectorAll('.main-svg').length),
    outputs: document.querySelectorAll('.cell-output').length,
  };
}"""


SCROLL_TO_DIAGRAM = """() => { const t = document.getElementById('the-diagram') || document.querySelector('main button.nc-open');
  if (t) window.scrollTo({top: t.getBoundingClientRect().top + window.scrollY - 70, behavior: 'instant'}); }"""  # the theme scrolls smoothly


def visit_site(site: Path, rels: list, profile: Path, screenshots: dict | None = None, search: str | None = None,
               viewer: str | None = None, expand: str | None = None) -> dict:
    """Open each page `rels` of the built `site` in headless Chromium; only 127.0.0.1 is reachable. Returns what each page
    showed; with `search`, the results of typing it in the search box; with `viewer`, the sizes of that page's first diagram
    in the column, opened full size and zoomed in; with `expand`, what a click on that page's first module box did to its
    figure (opened in place, then closed by a click on its fence), with screenshots before and after."""
    from playwright.sync_api import sync_playwright
    requested, blocked, errors, pages, found = [], [], {}, {}, {}

    def route(r):
        url = r.request.url
        if url.startswith(LOCAL_SCHEMES) or urlparse(url).hostname == '127.0.0.1': r.continue_()
        else: blocked.append(url); r.abort()

    with serve(site) as server, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, viewport={'width': 1280, 'height': 900})
        try:
            ctx.route('**/*', route)
            ctx.on('request', lambda req: requested.append(req.url))
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            current = {'rel': None}
            page.on('pageerror', lambda e: errors.setdefault(current['rel'], []).append(str(e)))
            page.on('console', lambda m: m.type == 'error' and errors.setdefault(current['rel'], []).append(f"console: {m.text}"))
            for rel in rels:
                current['rel'] = rel
                resp = page.goto(urljoin(server, rel), wait_until='load')
                page.wait_for_timeout(50)  # let deferred scripts run
                pages[rel] = {'status': resp.status if resp else None, **page.evaluate(_PAGE_STATE)}
                if rel in (screenshots or {}):
                    ARTIFACTS.mkdir(parents=True, exist_ok=True)
                    if rel != 'index.html':  # a zoo page or the gallery: at its (first) diagram
                        page.evaluate(SCROLL_TO_DIAGRAM); page.wait_for_timeout(300)
                    page.screenshot(path=str(ARTIFACTS/screenshots[rel]), full_page=False)
            if search:
                page.goto(urljoin(server, 'index.html'), wait_until='load')
                page.fill('#quarto-search input', search)
                page.wait_for_selector('.search-result', timeout=10_000)
                found['search'] = page.eval_on_selector_all('.search-result', 'els => els.map(a => a.href)')
            if viewer:
                page.goto(urljoin(server, viewer), wait_until='load')
                small = page.locator('main svg.nc-fit').first.bounding_box()
                page.locator('button.nc-open').first.click()
                big = page.locator('.nc-viewer svg').bounding_box()
                page.keyboard.press('+')
                bigger = page.locator('.nc-viewer svg').bounding_box()
                page.keyboard.press('Escape')
                found['viewer'] = dict(small=small, fit=big, zoomed=bigger, closed=page.locator('.nc-viewer').count() == 0)
            if expand:
                page.goto(urljoin(server, expand), wait_until='load')
                fig = page.locator('figure.nc-figure').first
                fig.scroll_into_view_if_needed(); ARTIFACTS.mkdir(parents=True, exist_ok=True)
                before = dict(fences=fig.locator('g.cluster').count(), boxes=fig.locator('g.nc-expand').count())
                fig.screenshot(path=str(ARTIFACTS/'docs_expand_before.png'))
                fig.locator('g.nc-expand').first.click(); page.wait_for_timeout(100)
                opened = dict(fences=fig.locator('g.cluster').count(), key=fig.get_attribute('data-open'),
                              collapse=fig.locator('g.nc-collapse').count())
                fig.screenshot(path=str(ARTIFACTS/'docs_expand_after.png'))
                fig.locator('g.nc-collapse > text').first.click(); page.wait_for_timeout(100)
                found['expand'] = dict(before=before, opened=opened, closed=dict(fences=fig.locator('g.cluster').count(),
                                                                                  key=fig.get_attribute('data-open')))
        finally: ctx.close()
    return {'server': server, 'pages': pages, 'requested': requested, 'blocked': blocked, 'errors': errors, **found}


def site_problems(got: dict, pages: dict) -> list:
    """What is wrong with a visited site, one line each: pages that did not load or have no heading, JS errors, pages the
    sidebar misses, outputs that drew nothing, requests to anywhere but 127.0.0.1. `pages` maps notebooks to pages."""
    bad, want = [], {urljoin(got['server'], rel) for rel in pages.values()}
    for rel, pg in got['pages'].items():
        if pg['status'] != 200: bad.append(f"{rel}: HTTP {pg['status']}")
        if not (pg['title'].strip() and pg['h1']): bad.append(f"{rel}: no title or heading ({pg['title']!r}, {pg['h1']!r})")
        bad += [f"{rel}: JS error {e}" for e in got['errors'].get(rel, [])]
        missing = want - {u.split('#')[0] for u in pg['sidebar']}
        if missing: bad.append(f"{rel}: the sidebar misses {sorted(missing)}")
        if not all(w > 0 and h > 0 for w, h in pg['svgs']): bad.append(f"{rel}: an SVG output has no size {pg['svgs']}")
        if not all(w > 0 and h > 0 for w, h in pg['maths']): bad.append(f"{rel}: a formula has no size")
        if pg['tex_left']: bad.append(f"{rel}: {pg['tex_left']} TeX delimiters left untypeset")
        if not all(n > 0 for n in pg['plots']): bad.append(f"{rel}: a plotly figure was not drawn")
    outside = [u for u in got['requested'] if not u.startswith(LOCAL_SCHEMES) and urlparse(u).hostname != '127.0.0.1']
    bad += [f"requested from outside 127.0.0.1: {u}" for u in dict.fromkeys(outside + got['blocked'])]
    return bad


def test_pages_come_from_nbs():
    assert 'index.ipynb' in PAGES, "nbs/index.ipynb is the home page (and README.md)"
    assert all(not part.startswith(('_', '.')) for nb in PAGES for part in Path(nb).parts)
    assert PAGES['docs_site.ipynb'] == 'docs_site.html'


def zoo_pages() -> dict:
    "Each zoo key of `zoo.table()` and its page, from the notebook that registers it."
    from neuralcircuits import zoo
    from neuralcircuits.docs_site import zoo_notebooks
    where = zoo_notebooks(NBS)
    return {r['key']: PAGES[where[r['key']].relative_to(NBS).as_posix()] for r in zoo.table()}


def diagram_problems(got: dict, rels) -> list:
    "Pages of `rels` without a visible SVG diagram inside the content column that opens full size."
    bad = []
    for rel in rels:
        ds = [d for d in got['pages'][rel]['diagrams'] if d['w'] > 50 and d['h'] > 20]
        if not ds:  # the usual cause: its diagram cells are `#| slow` and were committed without their outputs
            bad.append(f"{rel}: no visible SVG diagram (slow cells without saved outputs? `make refresh NB=nbs/...ipynb`)"); continue
        if not all(d['inside'] for d in ds): bad.append(f"{rel}: a diagram reaches outside the content column")
        if not all(d['open'] for d in ds): bad.append(f"{rel}: a diagram has no control to open it full size")
    return bad


# One test per site, so that pytest-xdist never builds a site twice (a session fixture runs once per worker).
def test_project_site(site, tmp_path_factory):
    """The bars of the module docstring, on the project's own site; screenshots of the home page, the catalogue, a zoo
    page at its diagram and the gallery land in tests/artifacts/."""
    from neuralcircuits.docs_site import broken_links
    t0 = time.perf_counter()
    rels = ['index.html', *sorted(set(PAGES.values()) - {'index.html'})]
    zoo = zoo_pages()
    shots = {'index.html': 'docs_home.png', 'catalogue.html': 'docs_catalogue.png', zoo['attnres']: 'docs_zoo_page.png',
             'circuits/gallery.html': 'docs_gallery.png'}
    got = visit_site(site, rels, tmp_path_factory.mktemp('chromium-profile'), shots, search='deltanet', viewer=zoo['attnres'],
                     expand=zoo['attnres'])
    print(f"\nvisited {len(rels)} pages in {time.perf_counter() - t0:.1f} s")
    assert sorted(got['pages']) == sorted(rels)
    assert site_problems(got, PAGES) == []
    assert diagram_problems(got, [*zoo.values(), 'circuits/gallery.html']) == []
    assert 'neuralcircuits' in got['pages']['index.html']['title']
    assert len(got['requested']) > len(rels)  # the pages, and their scripts and styles, all from the site
    assert got['pages']['catalogue.html']['cards'] == list(zoo)  # every key, in the table's order
    assert any(urlparse(u).path.endswith(zoo['deltanet']) for u in got['search']), got['search']
    v = got['viewer']
    assert v['fit']['width'] > v['small']['width'] and v['zoomed']['width'] > 1.2 * v['fit']['width'] and v['closed'], v
    assert broken_links(site) == []
    e = got['expand']                    # a click on AttnRes's folded block opens it in place; a click on its fence closes it
    assert e['opened']['key'] and e['opened']['collapse'] == 1 and e['opened']['fences'] > e['before']['fences'], e
    assert e['closed'] == {'fences': e['before']['fences'], 'key': ''}, e
    plots = [rel for rel, pg in got['pages'].items() if pg['plots']]
    assert 'widgets/residual_stream.html' in plots and len(got['pages']['widgets/residual_stream.html']['plots']) >= 5
    inline = re.compile(r'<script\b[^>]*>[^<]{0,300}\* plotly\.js v')  # plotly.js itself, not a page quoting its banner
    bundles = [f.relative_to(site).as_posix() for f in site.rglob('*')
               if (f.suffix == '.html' and inline.search(f.read_text(errors='replace'))) or (f.suffix == '.js' and '* plotly.js v' in f.read_text(errors='replace')[:2000])]
    assert bundles == ['site_libs/plotly/plotly.min.js'], bundles  # one copy of plotly.js for the whole site
    for name in set(shots.values()): assert (ARTIFACTS/name).stat().st_size > 10_000  # real screenshots, not blank pages


# ---- A small project of our own, so that every feature is on some page whatever the other notebooks hold:
# maths in prose, a notebook run at docs build (an SVG diagram drawn by graphviz, a plotly figure, a skipped
# `eval: false` cell, a `#| slow` cell that keeps its saved output), and a hidden notebook that must stay off the site.

def _nb(*cells) -> dict:
    mk = lambda kind, src, *outs: {'cell_type': kind, 'metadata': {}, 'source': src,
                                   **({'execution_count': None, 'outputs': list(outs)} if kind == 'code' else {})}
    return {'cells': [mk(*c) for c in cells], 'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
            'nbformat': 4, 'nbformat_minor': 5}

# What the diagram engine's `_repr_html_` gives: figures with captions and inline SVG (a top level much wider than
# the column, an inset), and a small inline script; twice on one page.
NEW_ENGINE = """from IPython.display import HTML, display
def fig(cap, w): return (f'<figure class="nc-figure"><figcaption>{cap}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
                        f'width="{w}pt" height="90pt" viewBox="0 0 {w} 90"><rect x="2" y="2" width="{w - 4}" height="86" fill="none" '
                        f'stroke="black"><title>a box</title></rect></svg></figure>')
for n in (1, 2): display(HTML(f'<div class="nc-diagram" id="d{n}">' + fig('the model', 2400) + fig('inset: one block', 300)
                              + f'<script>document.getElementById("d{n}").dataset.ran = "yes"</script></div>'))"""

MINI = {
    'index.ipynb': _nb(('markdown', '# Mini site\n\n> A project for the docs test.'), ('markdown', 'Scores are $q^\\top k / \\sqrt{d}$ and\n\n$$\\operatorname{softmax}(x)_i = \\frac{e^{x_i}}{\\sum_j e^{x_j}}$$\n')),
    'gallery/diagrams.ipynb': _nb(
        ('raw', '---\ntitle: Diagram gallery\ndescription: drawn by code at docs build\n---'),
        ('code', 'import graphviz\ng = graphviz.Digraph(graph_attr={"rankdir": "LR"})\ng.edge("x (b t m)", "Linear", label="m=64")\ng'),
        ('code', 'import plotly.graph_objects as go\ngo.Figure(go.Scatter(y=[1, 3, 2]))'),
        ('code', NEW_ENGINE),
        ('code', '#| eval: false\nraise RuntimeError("an eval: false cell must not run")'),
        ('code', '#| slow\nraise RuntimeError("a slow cell must not run")', {'output_type': 'stream', 'name': 'stdout', 'text': 'saved by make refresh\n'}),
        ('code', 'print("ran at docs build")')),
    '_hidden.ipynb': _nb(('markdown', '# Hidden\n\nNot on the site.')),
}


@pytest.fixture(scope='session')
def mini_site(tmp_path_factory):
    "Build the small project's site: its own settings.ini, the project's _quarto.yml and styles.css."
    from neuralcircuits.docs_site import build_docs
    root = tmp_path_factory.mktemp('mini')
    for f in ('settings.ini', '_quarto.yml'): shutil.copy(ROOT/f, root/f)
    (root/'neuralcircuits').mkdir()
    for rel, nb in MINI.items():
        (root/'nbs'/rel).parent.mkdir(parents=True, exist_ok=True)
        (root/'nbs'/rel).write_text(json.dumps(nb))
    for f in ('styles.css', 'site-scripts.html', 'favicon.svg'): shutil.copy(NBS/f, root/'nbs'/f)  # what _quarto.yml names
    t0 = time.perf_counter()
    out = build_docs(root/'site', quarto=False, root=root)
    print(f"\nsmall site built in {time.perf_counter() - t0:.1f} s")
    return out


def test_mini_site(mini_site, tmp_path_factory):
    "Maths, a notebook run at docs build (SVG diagram, plotly figure, `eval: false` and `slow` cells not run), a hidden notebook left out."
    pages = {'index.ipynb': 'index.html', 'gallery/diagrams.ipynb': 'gallery/diagrams.html'}
    got = visit_site(mini_site, list(pages.values()), tmp_path_factory.mktemp('chromium-mini'), {'gallery/diagrams.html': 'docs_mini_gallery.png'})
    assert sorted(p.relative_to(mini_site).as_posix() for p in mini_site.rglob('*.html')) == sorted(pages.values())
    assert site_problems(got, pages) == []
    index, gallery = got['pages']['index.html'], got['pages']['gallery/diagrams.html']
    assert len(index['maths']) == 2  # one inline, one display formula, as MathML
    assert len(gallery['svgs']) == 5 and len(gallery['plots']) == 1  # the graphviz diagram, 2 x 2 figures, the plotly figure
    assert len(gallery['diagrams']) == 5 and all(d['inside'] and d['open'] and d['w'] > 50 for d in gallery['diagrams']), gallery['diagrams']
    assert gallery['ran'] == ['yes', 'yes']  # the inline scripts of outputs run
    html = (mini_site/'gallery'/'diagrams.html').read_text()
    assert 'ran at docs build' in html and 'must not run' in html  # outputs from the build; the skipped cell shows, unrun
    assert 'RuntimeError: an eval' not in html and 'saved by make refresh' in html  # the slow cell shows its saved output
    assert any(u.endswith('site_libs/plotly/plotly.min.js') for u in got['requested'])
