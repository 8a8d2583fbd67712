"""Wrong calls to train: tasks and their arguments, fit, job configs (dicts and files), checkpoints, launch and compare.
Each raises a ValueError/TypeError (or CheckpointError/FileNotFoundError) that names the argument and what came,
before any work starts."""
import json
import pytest, torch
from neuralcircuits import train, zoo
from neuralcircuits.train import CheckpointError, FitConfig, data
from neuralcircuits.train.checkpoint import load_checkpoint, save_checkpoint, verify_checkpoint
from neuralcircuits.train.jobs import Job, launch, load_config, run_config

class Bad:
    "A wrong call, the exception it must raise and the words its message must contain (the argument, what came)."
    def __init__(self, id: str, call, exc: type, *words: str):
        self.id, self.call, self.exc, self.words = id, call, exc, words
    def __repr__(self): return self.id

COPY = dict(length=3, vocab_size=6, n_train=32, n_val=8)
_copy = None
def copy_task():
    global _copy
    if _copy is None: _copy = data.copy(**COPY)
    return _copy

def tiny_lm():
    model, _ = zoo.tiny('transformer', vocab_size=6, max_len=6)
    return model

def job(**kw) -> dict: return dict(dict(model='transformer', data='copy', data_args=COPY, fit=dict(steps=1, batch_size=4, progress=False)), **kw)

def write(tmp, name: str, text: str):
    p = tmp / name; p.write_text(text); return p

def damaged_checkpoint(tmp):
    path = save_checkpoint(dict(step=1), tmp, 1)
    path.write_bytes(path.read_bytes()[:-3])
    return path

CASES = [
    Bad('task-unknown-name', lambda t: data.task('copyy'), ValueError, "'copyy'", "'copy'"),
    Bad('task-name-not-str', lambda t: data.task(3), TypeError, 'name', '3'),
    Bad('task-module-missing', lambda t: data.task('nosuchmodule:make'), ValueError, "'nosuchmodule:make'"),
    Bad('task-unknown-argument', lambda t: data.task('copy', lenght=3), TypeError, 'lenght'),
    Bad('copy-zero-length', lambda t: data.copy(length=0), ValueError, 'length', '0'),
    Bad('copy-vocab-one', lambda t: data.copy(vocab_size=1), ValueError, 'vocab_size', '1'),
    Bad('copy-float-length', lambda t: data.copy(length=2.5), TypeError, 'length', '2.5'),
    Bad('copy-zero-train', lambda t: data.copy(n_train=0), ValueError, 'n_train', '0'),
    Bad('recall-too-many-pairs', lambda t: data.recall(n_pairs=100), ValueError, 'n_pairs=100', 'vocab_size'),
    Bad('recall-zero-queries', lambda t: data.recall(n_queries=0), ValueError, 'n_queries', '0'),
    Bad('recall-float-vocab', lambda t: data.recall(vocab_size=64.0), TypeError, 'vocab_size', '64.0'),
    Bad('listops-max-len-too-small', lambda t: data.listops(max_len=2), ValueError, 'max_len', '2'),
    Bad('listops-one-arg', lambda t: data.listops(max_args=1), ValueError, 'max_args', '1'),
    Bad('listops-negative-depth', lambda t: data.listops(max_depth=-1), ValueError, 'max_depth', '-1'),
    Bad('shakespeare-zero-block', lambda t: data.shakespeare(block_size=0), ValueError, 'block_size', '0'),
    Bad('shakespeare-unknown-play', lambda t: data.shakespeare(plays=['hamlett']), ValueError, "'hamlett'"),
    Bad('shakespeare-val-fraction-one', lambda t: data.shakespeare(val_fraction=1.0), ValueError, 'val_fraction', '1.0'),
    Bad('chartext-block-too-long', lambda t: data.CharText('abc', 'abc', block_size=8), ValueError, 'block_size=8'),
    Bad('digits-val-size-too-large', lambda t: data.digits(val_size=5000), ValueError, 'val_size', '5000'),
    Bad('batch-unknown-split', lambda t: copy_task().batch('test', 2, torch.Generator()), ValueError, 'split', "'test'"),
    Bad('batch-zero-size', lambda t: copy_task().batch('train', 0, torch.Generator()), ValueError, 'batch_size', '0'),
    Bad('size-unknown-split', lambda t: copy_task().size('valid'), ValueError, 'split', "'valid'"),
    Bad('fit-data-a-name', lambda t: train.fit(tiny_lm(), 'copy'), TypeError, 'data', 'str'),
    Bad('fit-model-not-module', lambda t: train.fit('transformer', copy_task()), TypeError, 'model', 'str'),
    Bad('fit-cfg-a-dict', lambda t: train.fit(tiny_lm(), copy_task(), dict(steps=1)), TypeError, 'cfg', 'dict'),
    Bad('fit-batch-larger-than-data', lambda t: train.fit(tiny_lm(), copy_task(), FitConfig(batch_size=64, progress=False)),
        ValueError, 'batch_size=64', '32'),
    Bad('fit-missing-cuda', lambda t: train.fit(tiny_lm(), copy_task(), FitConfig(device='cuda:7', steps=1, batch_size=2, progress=False)),
        ValueError, 'device', "'cuda:7'"),
    Bad('fit-resume-missing-checkpoint', lambda t: train.fit(tiny_lm(), copy_task(), FitConfig(steps=1, batch_size=2, progress=False),
                                                            out_dir=t, resume=str(t / 'none.pt')), CheckpointError, 'none.pt', 'does not exist'),
    Bad('fit-resume-damaged', lambda t: (damaged_checkpoint(t / 'checkpoints'), train.fit(
        tiny_lm(), copy_task(), FitConfig(steps=1, batch_size=2, progress=False), out_dir=t, resume=True)), CheckpointError, 'truncated'),
    Bad('config-missing-file', lambda t: load_config(t / 'nope.json'), FileNotFoundError, 'nope.json'),
    Bad('config-malformed-json', lambda t: load_config(write(t, 'bad.json', '{"model": "transformer",')), ValueError, 'bad.json'),
    Bad('config-malformed-toml', lambda t: load_config(write(t, 'bad.toml', 'model = ')), ValueError, 'bad.toml'),
    Bad('config-not-a-table', lambda t: load_config(write(t, 'list.json', '[1, 2]')), TypeError, 'list'),
    Bad('config-unknown-key', lambda t: load_config(job(modle='x')), ValueError, "'modle'", "'model'"),
    Bad('config-no-model', lambda t: load_config(dict(data='copy')), ValueError, 'model'),
    Bad('config-model-not-str', lambda t: load_config(job(model=3)), TypeError, 'model', '3'),
    Bad('config-fit-unknown-field', lambda t: load_config(job(fit=dict(stepz=3))), ValueError, "'stepz'", 'steps'),
    Bad('config-fit-wrong-type', lambda t: load_config(job(fit=dict(lr='fast'))), TypeError, 'lr', "'fast'"),
    Bad('config-fit-bad-value', lambda t: load_config(job(fit=dict(lr=-1.0))), ValueError, 'lr', '-1.0'),
    Bad('config-fit-a-list', lambda t: load_config(job(fit=[1])), TypeError, 'fit', '[1]'),
    Bad('config-model-args-a-list', lambda t: load_config(job(model_args=[1])), TypeError, 'model_args', '[1]'),
    Bad('config-threads-str', lambda t: load_config(job(threads='2')), TypeError, 'threads', "'2'"),
    Bad('config-negative-threads', lambda t: load_config(job(threads=-1)), ValueError, 'threads', '-1'),
    Bad('config-size-huge', lambda t: load_config(job(size='huge')), ValueError, 'size', "'huge'"),
    Bad('config-source-int', lambda t: load_config(42), TypeError, 'source', 'int'),
    Bad('run-unknown-model', lambda t: run_config(job(model='transfomer', out_dir=str(t))), KeyError, "'transfomer'"),
    Bad('run-model-args-wrong-type', lambda t: run_config(job(model_args=dict(d_model='x'), out_dir=str(t))), TypeError, 'd_model', "'x'"),
    Bad('run-model-args-unknown', lambda t: run_config(job(model_args=dict(dmodel=8), out_dir=str(t))), ValueError, "'dmodel'"),
    Bad('run-bad-data-args', lambda t: run_config(job(data_args=dict(COPY, length=0), out_dir=str(t))), ValueError, 'length', '0'),
    Bad('run-missing-cuda', lambda t: run_config(job(fit=dict(steps=1, batch_size=4, device='cuda:7'), out_dir=str(t))),
        ValueError, 'device', "'cuda:7'"),
    Bad('launch-zero-nproc', lambda t: launch(job(out_dir=str(t)), nproc=0), ValueError, 'nproc', '0'),
    Bad('launch-str-nproc', lambda t: launch(job(out_dir=str(t)), nproc='2'), TypeError, 'nproc', "'2'"),
    Bad('launch-unknown-backend', lambda t: launch(job(out_dir=str(t)), backend='slurm'), ValueError, 'backend', "'slurm'"),
    Bad('job-not-a-directory', lambda t: Job(t / 'nothing'), ValueError, 'nothing'),
    Bad('checkpoint-missing', lambda t: load_checkpoint(t / 'step_00000001.pt'), CheckpointError, 'does not exist'),
    Bad('checkpoint-truncated', lambda t: load_checkpoint(damaged_checkpoint(t)), CheckpointError, 'truncated'),
    Bad('checkpoint-manifest-incomplete', lambda t: (save_checkpoint(dict(step=1), t, 1), write(t, 'step_00000001.json', '{"step": 1}'),
                                                    verify_checkpoint(t / 'step_00000001.pt')), CheckpointError, 'manifest', 'bytes'),
    Bad('checkpoint-negative-step', lambda t: save_checkpoint(dict(step=1), t, -1), ValueError, 'step', '-1'),
    Bad('compare-keys-a-string', lambda t: train.compare('transformer', copy_task(), 1), TypeError, 'keys', "'transformer'"),
    Bad('compare-no-keys', lambda t: train.compare([], copy_task(), 1), ValueError, 'keys', '[]'),
    Bad('task-module-unknown-argument', lambda t: data.task('neuralcircuits.train.data:copy', lenght=3), TypeError, 'lenght', 'length'),
    Bad('run-custom-model-unknown-argument', lambda t: run_config(job(model='neuralcircuits.zoo:token_input', model_args=dict(bogus=1),
                                                                      out_dir=str(t))), TypeError, "'bogus'", 'cfg'),
    Bad('run-data-args-typo', lambda t: run_config(job(data_args=dict(COPY, lenght=3), out_dir=str(t))), TypeError, "'lenght'"),
    Bad('launch-local-two-processes', lambda t: launch(job(out_dir=str(t / 'run')), nproc=2), ValueError, 'nproc=2', 'torchrun'),
    Bad('fit-config-lr-list', lambda t: FitConfig(lr=[0.1]), TypeError, 'lr', '[0.1]'),
    Bad('fit-unknown-parallel', lambda t: FitConfig(parallel='zero'), ValueError, 'parallel', "'zero'"),
    Bad('compare-zero-budget', lambda t: train.Budget(steps=0), ValueError, 'steps', '0'),
]

@pytest.mark.parametrize('case', CASES, ids=repr)
def test_bad_input(case, tmp_path):
    with pytest.raises(case.exc) as e: case.call(tmp_path)
    for w in case.words: assert w in str(e.value), f"{case.id}: {w!r} not in the message {str(e.value)!r}"

def test_refused_launch_leaves_no_job(tmp_path):
    "A launch refused for its arguments writes nothing: no job directory that looks started."
    with pytest.raises(ValueError): launch(job(out_dir=str(tmp_path / 'run')), nproc=2)
    assert not (tmp_path / 'run').exists()

def test_valid_job_config_still_accepted(tmp_path):
    "A config file written the way the notebooks write one loads, with the fit dict made a FitConfig."
    p = tmp_path / 'ok.json'; p.write_text(json.dumps(job()))
    cfg = load_config(p)
    assert isinstance(cfg.fit, FitConfig) and cfg.fit.steps == 1 and cfg.data_args == COPY
