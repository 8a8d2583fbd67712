"""The dependency direction of DESIGN.md, read from the imports of every module (top level and inside functions):
configs at the root; axes on configs; kernels on configs/axes only (blocks and zoo reach kernels, never the reverse);
blocks and circuits on axes; zoo on blocks; probe on blocks; widgets on probe; train on zoo; nothing in the library
imports train, widgets, cli or the benchmarks (`neuralcircuits.bench`), which may import anything.

Two refinements: `train.data` (data sets made in code, on configs only) is a leaf that the zoo's experiments may use
for their tasks; `zoo.compress.trained` loads and remakes the stored trained weights through training jobs, so it
stands at the top with the applications."""
import ast, pathlib
import pytest
import neuralcircuits

ROOT = pathlib.Path(neuralcircuits.__file__).parent
BASE = {'configs'}
ALLOWED = {   # package -> the packages it may import (besides itself)
    'configs': set(),
    'axes': BASE,
    'kernels': BASE | {'axes'},
    'blocks': BASE | {'axes', 'kernels'},
    'circuits': BASE | {'axes'},
    'train.data': BASE,
    'zoo': BASE | {'axes', 'blocks', 'kernels', 'train.data'},
    'probe': BASE | {'axes', 'blocks'},
    'widgets': BASE | {'axes', 'blocks', 'probe', 'circuits', 'zoo'},
    'train': BASE | {'axes', 'blocks', 'kernels', 'circuits', 'zoo', 'train.data'},
}
APPS = {'bench', 'cli', 'tour', 'docs_site', '__init__', '_modidx'}   # the top of the graph: may import anything
APP_MODULES = {'neuralcircuits.zoo.compress.trained'}                 # modules of a package that stand at the top too

def package_of(module: str) -> str:
    "`neuralcircuits.kernels.flash` -> 'kernels'; the data sets `neuralcircuits.train.data` are a node of their own."
    if module == 'neuralcircuits.train.data' or module.startswith('neuralcircuits.train.data.'): return 'train.data'
    if module in APP_MODULES: return 'bench'
    return module.split('.')[1] if module.count('.') else '__init__'

def imports(path: pathlib.Path, module: str | None = None) -> set[str]:
    "The neuralcircuits modules `path` (the module named `module`) imports, relative imports resolved."
    module = module or 'neuralcircuits.' + '.'.join(path.relative_to(ROOT).with_suffix('').parts)
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    if module.endswith('.__init__'): module = package = module[:-len('.__init__')]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import): found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found |= {base} | ({f'{base}.{a.name}' for a in node.names} if base == 'neuralcircuits' else set())
    return {m for m in found if m.startswith('neuralcircuits.')}

MODULES = sorted(p for p in ROOT.rglob('*.py'))
KNOWN = {}   # module path -> why it may break the direction for now (none today)

def test_every_package_is_placed():
    "A new package must be given its place in the graph here."
    packages = {package_of('neuralcircuits.' + '.'.join(p.relative_to(ROOT).with_suffix('').parts)) for p in MODULES}
    assert packages <= set(ALLOWED) | APPS, packages - set(ALLOWED) - APPS

@pytest.mark.parametrize('path', [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=KNOWN[str(p.relative_to(ROOT))]))
                                  if str(p.relative_to(ROOT)) in KNOWN else p for p in MODULES],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_design(path):
    here = package_of('neuralcircuits.' + '.'.join(path.relative_to(ROOT).with_suffix('').parts))
    if here in APPS: return
    against = sorted(m for m in imports(path) if package_of(m) not in ALLOWED[here] | {here})
    assert not against, f"{path.relative_to(ROOT)} ({here}) imports {against}, against DESIGN.md's direction"

def test_the_check_sees_a_violation(tmp_path):
    "The reader resolves relative imports: `from ..zoo import x` inside kernels is caught."
    bad = tmp_path / 'fake.py'
    bad.write_text('from . import wants_triton\ndef f():\n    from ..zoo import tiny\n    from neuralcircuits.blocks import Block\n')
    assert imports(bad, 'neuralcircuits.kernels.fake') == {'neuralcircuits.kernels', 'neuralcircuits.zoo', 'neuralcircuits.blocks'}
