"""`nc` with a wrong argument: one paragraph on stderr naming what is wrong, a non-zero exit and no traceback; a bug
(an exception that no check raised) still shows its traceback. Most cases call `main` in this process (fast); the
bar's two commands also run as a real `nc` subprocess."""
import json, os, pathlib, subprocess, sys
import pytest
from neuralcircuits import cli
from neuralcircuits.train.checkpoint import save_checkpoint

COPY = dict(length=3, vocab_size=6, n_train=32, n_val=8)

def job_file(tmp, name='job.json', **kw):
    cfg = dict(dict(model='transformer', data='copy', data_args=COPY, out_dir=str(tmp / 'run'),
                    fit=dict(steps=1, batch_size=4, progress=False)), **kw)
    p = tmp / name; p.write_text(json.dumps(cfg)); return str(p)

def damaged_run(tmp):
    path = save_checkpoint(dict(step=1), tmp / 'run' / 'checkpoints', 1)
    path.write_bytes(b'not a checkpoint')
    return job_file(tmp)

class Bad:
    "`nc` arguments (made from a temporary folder) and the words the one paragraph must contain."
    def __init__(self, id: str, argv, *words: str):
        self.id, self.argv, self.words = id, argv, words
    def __repr__(self): return self.id

CASES = [
    Bad('train-missing-file', lambda t: ['train', str(t / 'nope.json')], 'nc train', 'nope.json', 'does not exist'),
    Bad('train-malformed-json', lambda t: ['train', str((t / 'x.json').write_text('{') and t / 'x.json')], 'x.json'),
    Bad('train-unknown-field', lambda t: ['train', job_file(t, stepz=3)], "'stepz'"),
    Bad('train-unknown-fit-field', lambda t: ['train', job_file(t, fit=dict(stepz=3))], "'stepz'", 'steps'),
    Bad('train-bad-value', lambda t: ['train', job_file(t, fit=dict(lr=-1.0))], 'lr', '-1.0'),
    Bad('train-wrong-type', lambda t: ['train', job_file(t, fit=dict(steps='ten'))], 'steps', "'ten'"),
    Bad('train-unknown-model', lambda t: ['train', job_file(t, model='transfomer')], "'transfomer'", "'transformer'"),
    Bad('train-bad-device', lambda t: ['train', job_file(t, fit=dict(steps=1, batch_size=4, device='gpu'))], 'device', "'gpu'"),
    Bad('train-resume-damaged', lambda t: ['train', damaged_run(t), '--resume'], 'checkpoint', 'step_00000001.pt'),
    Bad('train-config-a-folder', lambda t: ['train', str(t)], 'Is a directory'),
    Bad('train-malformed-toml', lambda t: ['train', str((t / 'x.toml').write_text('model = ') and t / 'x.toml')], 'x.toml', 'TOML'),
    Bad('train-data-args-typo', lambda t: ['train', job_file(t, data_args=dict(COPY, lenght=3))], "'lenght'", 'length'),
    Bad('train-model-args-wrong-type', lambda t: ['train', job_file(t, model_args=dict(n_layers='two'))], 'n_layers', "'two'"),
    Bad('train-batch-larger-than-data', lambda t: ['train', job_file(t, fit=dict(steps=1, batch_size=64))], 'batch_size=64'),
    Bad('diagram-unknown-key', lambda t: ['diagram', 'transfomer'], 'nc diagram', "'transfomer'", "'transformer'"),
    Bad('diagram-bad-suffix', lambda t: ['diagram', 'transformer', '-o', str(t / 'd.txt')], 'd.txt', '.svg'),
    Bad('diagram-missing-folder', lambda t: ['diagram', 'transformer', '-o', str(t / 'no' / 'd.svg')], 'd.svg'),
    Bad('diagram-negative-depth', lambda t: ['diagram', 'transformer', '--depth', '-1'], 'depth', '-1'),
    Bad('tour-negative-seconds', lambda t: ['tour', '--seconds', '-5'], 'seconds', '-5'),
]

@pytest.mark.parametrize('case', CASES, ids=repr)
def test_user_error_is_one_paragraph(case, tmp_path, capsys):
    with pytest.raises(SystemExit) as e: cli.main(case.argv(tmp_path))
    err = capsys.readouterr().err
    assert e.value.code not in (0, None), f"{case.id}: exit code {e.value.code}"
    assert 'Traceback' not in err and '\n\n' not in err.strip(), f"{case.id}: not one paragraph:\n{err}"
    for w in case.words: assert w in err, f"{case.id}: {w!r} not in {err!r}"

@pytest.mark.parametrize('argv', [['bench', 'nope'], ['diagram'], ['train'], [], ['diagram', 'transformer', '--depth', 'two']],
                         ids=['unknown-bench', 'diagram-no-key', 'train-no-config', 'no-command', 'depth-not-int'])
def test_usage_error_exits_2(argv, capsys):
    "argparse's own errors: usage and one line, exit 2."
    with pytest.raises(SystemExit) as e: cli.main(argv)
    assert e.value.code == 2 and 'Traceback' not in capsys.readouterr().err

def test_bug_keeps_its_traceback(monkeypatch):
    "An exception no check raised (here Python's own, from an expression) is a bug: it propagates with its traceback."
    from neuralcircuits import zoo
    monkeypatch.setattr(zoo, 'table', lambda: {}['missing'])
    with pytest.raises(KeyError): cli.main(['zoo'])

def nc(*argv, cwd):
    root = str(pathlib.Path(__file__).resolve().parents[1])   # this checkout, wherever pytest runs from
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-c', 'from neuralcircuits.cli import main; main()', *argv],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)

def test_nc_train_and_diagram_subprocess(tmp_path):
    "The bar: `nc train` and `nc diagram` with a bad argument exit non-zero without a traceback, from a real shell."
    for argv, words in [(['train', str(tmp_path / 'nope.json')], ['nope.json']),
                        (['train', job_file(tmp_path, fit=dict(steps='ten'))], ['steps', "'ten'"]),
                        (['diagram', 'transfomer'], ["'transfomer'"])]:
        p = nc(*argv, cwd=tmp_path)
        assert p.returncode == 1 and 'Traceback' not in p.stderr and p.stdout == '', (argv, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and all(w in p.stderr for w in words), (argv, p.stderr)
