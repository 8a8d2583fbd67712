"""House rules for the notebooks that keep the docs build fast and the site complete."""
import ast, json, re
from pathlib import Path
import pytest

NBS = Path(__file__).parents[1] / 'nbs'
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)


def mixed_import_cells(nb: dict) -> list[str]:
    """Cells that nbdev's docs processing would run because they import, though they also compute.

    nbdev executes every cell that contains an import to document exported names; a cell that also trains or draws
    would run at every docs build (nbdev's FAQ: keep imports in cells of their own)."""
    bad = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or re.search(r'^#\|\s*(export|exports|exporti|exec_doc)\b|^#\|\s*eval:\s*false', src, re.M):
            continue
        try: tree = ast.parse(src)
        except SyntaxError: continue
        imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        pure = all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)
        if imports and not pure and 'nbdev_export()' not in src: bad.append(src[:80])
    return bad


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_imports_in_cells_of_their_own(path):
    assert mixed_import_cells(json.loads(path.read_text())) == []


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_has_a_title(path):
    "Every page opens with a `# Title` and a `> summary`, as nbdev's pages do."
    md = [''.join(c['source']) for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'markdown']
    assert md and re.match(r'#\s+\S', md[0]) and '\n>' in md[0], f"{path.name}: the first markdown cell needs '# Title' and '> summary'"


def test_readme_is_generated_from_index():
    from neuralcircuits.docs_site import readme_markdown
    assert (NBS.parent / 'README.md').read_text() == readme_markdown(NBS / 'index.ipynb'), \
        "README.md is stale: run `make readme` (it is generated from nbs/index.ipynb)"
