"""`pip install neuralcircuits` as a user gets it: build the wheel, install it in a fresh virtual environment, and run
the README's first look from a folder outside the checkout.

The library's requirements are what it needs at run time (torch, numpy, einops, plotly, ipywidgets, ...); JupyterLab,
nbdev and the rest come with the extras (`[lab]`, `[docs]`, `[dev]`, `[train]`, `[all]`). torch is pinned to the
build this project tests with, in the same pip command (a bare `torch` requirement would pull a multi-GB CUDA build).
"""
import ast, os, re, shutil, subprocess, sys, textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get('NC_TORCH', 'torch==2.13.0')

pytestmark = pytest.mark.skipif(shutil.which('dot') is None, reason="graphviz's dot draws the diagrams")


def first_look(readme: str) -> tuple[list[str], list[str]]:
    "The Python blocks of the README's section 'A first look', and the plain outputs it shows for them."
    section = re.search(r'^## A first look\n(.*?)(?=^## )', readme, re.S | re.M)
    assert section, "README.md has no section '## A first look'"
    code, shown, block, kind = [], [], None, None
    for line in section.group(1).splitlines():
        if block is None and line.startswith('```'): block, kind = [], line[3:].strip()
        elif block is not None and line.strip() == '```':
            (code if kind == 'python' else shown).append('\n'.join(block)); block = None
        elif block is not None: block.append(line)
    return code, shown


# Runs each block as a notebook cell would: statements, then the value of a last bare expression, printed.
RUNNER = textwrap.dedent('''
    import ast, json, sys
    ns = {}
    for block in json.load(open(sys.argv[1])):
        tree = ast.parse(block)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, '<readme>', 'exec'), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), '<readme>', 'eval'), ns)
            if value is not None: print(repr(value))
    import neuralcircuits as nc
    d = nc.diagram(*nc.zoo.tiny('attnres'))
    svg = d.figures[0].svg if hasattr(d, 'figures') else d.svg
    print('diagram', svg.count('<svg'), len(svg))
    print('from', nc.__file__)
''')


def test_first_look_runs_from_the_wheel(tmp_path):
    "The wheel installs without JupyterLab or nbdev, and the README's first look and an AttnRes diagram run from it."
    dist, venv, away = tmp_path/'dist', tmp_path/'venv', tmp_path/'elsewhere'
    away.mkdir()
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(dist), str(ROOT)],
                   check=True, cwd=tmp_path, capture_output=True)
    wheel, = dist.glob('neuralcircuits-*.whl')
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py = venv/'bin'/'python'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', str(wheel), TORCH], cwd=away, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]

    names = subprocess.run([str(py), '-m', 'pip', 'list', '--format=freeze'], cwd=away, env=env, capture_output=True, text=True, check=True).stdout
    installed = {l.split('==')[0].lower().replace('_', '-') for l in names.split()}
    assert {'torch', 'numpy', 'einops', 'plotly', 'ipywidgets', 'pot', 'tqdm'} <= installed
    assert not installed & {'jupyterlab', 'nbdev', 'execnb', 'smalldocs', 'pytest', 'playwright', 'notebook'}, sorted(installed)

    blocks, shown = first_look((ROOT/'README.md').read_text())
    assert len(blocks) >= 3 and shown
    (away/'blocks.json').write_text(__import__('json').dumps(blocks))
    (away/'run.py').write_text(RUNNER)
    r = subprocess.run([str(py), 'run.py', 'blocks.json'], cwd=away, env={**env, 'OMP_NUM_THREADS': '1'}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert 'transformer' in out and 'attnres' in out                   # the zoo table, as text
    for o in shown: assert o.strip() in out, f"the README shows {o!r}; the wheel printed:\n{out[-2000:]}"
    m = re.search(r'^diagram (\d+) (\d+)$', out, re.M)
    assert m and int(m[1]) >= 1 and int(m[2]) > 10_000, out[-2000:]
    where = Path(re.search(r'^from (.*)$', out, re.M)[1])
    assert where.is_relative_to(venv), f"imported {where}, not the installed wheel"
