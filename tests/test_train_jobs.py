"Training jobs end to end (CPU, deterministic): kill and resume, bad checkpoints, NaN, DDP on 2 gloo processes, bad configs."
import json, os, pathlib, signal, sys, textwrap, time
import pytest, torch
from neuralcircuits.train.jobs import JobConfig, launch, run_config, Job
from neuralcircuits.train.checkpoint import checkpoints, load_checkpoint, CheckpointError

MODELS = textwrap.dedent('''
    import time, torch
    from torch import nn
    class MLPLM(nn.Module):
        "Token and position embeddings, an MLP per position."
        def __init__(self, vocab_size, max_len, d, nan_at, slow_after):
            super().__init__()
            self.slow_after = slow_after
            self.emb, self.pos = nn.Embedding(vocab_size, d), nn.Embedding(max_len, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, vocab_size))
            self.nan_at, self.calls = nan_at, 0
        def forward(self, x):
            if self.training: self.calls += 1
            if self.training and self.slow_after and self.calls > self.slow_after: time.sleep(0.02)  # timing only
            out = self.mlp(self.emb(x) + self.pos.weight[:x.shape[1]])
            return out * float('nan') if self.calls == self.nan_at else out
    def mlp_lm(vocab_size: int, max_len: int, d: int = 32, nan_at: int = 0, slow_after: int = 0):
        return MLPLM(vocab_size, max_len, d, nan_at, slow_after)
''')

@pytest.fixture
def models(tmp_path, monkeypatch):
    "A module of test models importable here and in launched processes."
    (tmp_path / 'nc_test_models.py').write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('PYTHONPATH', f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return tmp_path

def job_config(out_dir, steps=60, d=32, **fit) -> JobConfig:
    fit = dict(dict(steps=steps, batch_size=16, warmup=5, lr=1e-2, ckpt_every=20, eval_every=30, log_every=10,
                    progress=False), **fit)
    return JobConfig(model='nc_test_models:mlp_lm', model_args=dict(d=d), data='copy',
                     data_args=dict(length=8, vocab_size=12, n_train=2000, n_val=100), fit=fit, out_dir=str(out_dir), threads=1)

def final_state(out_dir) -> dict: return load_checkpoint(checkpoints(pathlib.Path(out_dir) / 'checkpoints')[-1])

def test_sigkill_then_resume_equals_uninterrupted(models):
    "A job killed with SIGKILL mid-run and resumed ends on exactly the weights of an uninterrupted run."
    cfg = lambda name: job_config(models / name, steps=200, d=64, ckpt_every=50)
    slowed = cfg('victim'); slowed.model_args['slow_after'] = 100  # 20 ms per step after step 100: time to kill it
    whole, victim = launch(cfg('whole')), launch(slowed)
    ckpts = models / 'victim' / 'checkpoints'
    deadline = time.monotonic() + 120
    while not (ckpts / 'step_00000100.json').exists():
        assert time.monotonic() < deadline and victim.process.poll() is None, victim.logs()
        time.sleep(0.01)
    victim.kill()
    assert victim.wait(30) == 'killed'
    assert victim.status()['step'] < 200, 'the job finished before it could be killed: make it longer'
    resumed = victim.resume()
    assert resumed.wait(120) == 'done', resumed.logs()
    assert whole.wait(120) == 'done', whole.logs()
    a, b = final_state(models / 'whole'), final_state(models / 'victim')
    assert a['step'] == b['step'] == 200
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k
    assert a['history'] == b['history']  # the same losses at every step
    rows = [json.loads(l) for l in (models / 'victim' / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == list(range(1, 201))  # no step logged twice

def test_corrupted_checkpoint_is_named_and_previous_kept(models):
    run_config(job_config(models / 'run'))
    found = checkpoints(models / 'run' / 'checkpoints')
    assert [p.name for p in found] == ['step_00000020.pt', 'step_00000040.pt', 'step_00000060.pt']
    found[-1].write_bytes(found[-1].read_bytes()[:-50])  # truncated
    with pytest.raises(CheckpointError, match=r"step_00000060.pt is truncated.*step_00000040.pt is intact"):
        run_config(job_config(models / 'run', steps=80), resume=True)
    assert found[-2].exists() and load_checkpoint(found[-2])['step'] == 40
    result = run_config(job_config(models / 'run', steps=80), resume=str(found[-2]))  # resume from the good one
    assert result.history[-1]['step'] == 80

def test_nan_loss_stops_job_naming_step(models):
    cfg = job_config(models / 'nan', steps=60, ckpt_every=10)
    cfg.model_args['nan_at'] = 25  # the 25th training forward returns NaN
    job = launch(cfg)
    assert job.wait(120) == 'failed'
    assert 'NonFiniteLoss: the loss became nan at step 25' in job.status()['error']
    assert checkpoints(models / 'nan' / 'checkpoints')[-1].name == 'step_00000020.pt'
    assert final_state(models / 'nan')['history'][-1]['step'] == 20
    assert 'at step 25' in job.logs(50)

def test_ddp_and_fsdp_two_gloo_processes_match_one(models):
    "Same global batch on 1 process and on 2 DDP (or FSDP) processes: the same losses within float32 reduction-order noise."
    one = launch(job_config(models / 'one', steps=30, eval_every=30))
    two = launch(job_config(models / 'two', steps=30, eval_every=30), nproc=2, backend='torchrun')
    fsdp = launch(job_config(models / 'fsdp', steps=30, eval_every=30, parallel='fsdp'), nproc=2, backend='torchrun')
    assert one.wait(120) == 'done', one.logs()
    assert two.wait(180) == 'done', two.logs()
    assert fsdp.wait(180) == 'done', fsdp.logs()
    h1 = final_state(models / 'one')['history']
    w1 = final_state(models / 'one')['model']
    for run in ('two', 'fsdp'):
        h2, w2 = final_state(models / run)['history'], final_state(models / run)['model']
        assert [r['step'] for r in h1] == [r['step'] for r in h2] == list(range(1, 31))
        # Gradients averaged across processes vs one mean over the whole batch differ in float32 rounding only:
        # measured (DDP) 1e-6 on the loss and 1.2e-7 on the weights after 30 Adam steps; the bounds leave a 10x margin.
        for r1, r2 in zip(h1, h2): assert abs(r1['train_loss'] - r2['train_loss']) < 1e-5, (run, r1, r2)
        assert abs(h1[-1]['val_loss'] - h2[-1]['val_loss']) < 1e-5
        assert w1.keys() == w2.keys()  # FSDP's gathered checkpoint has the same names as a plain one
        for k in w1: torch.testing.assert_close(w1[k], w2[k], rtol=0, atol=2e-6)

@pytest.mark.parametrize('change, message', [
    (dict(model='transformr'), "closest"),
    (dict(fit=dict(lr=-0.01)), "lr=-0.01 is invalid"),
    (dict(fit=dict(batch_size=4096)), "larger than the training set"),
    (dict(data='shakespear'), "closest: 'shakespeare'"),
    (dict(data='no_such_module:make'), "could not be loaded"),
    (dict(data_args=dict(plays=['hamlett'])), "'hamlet'"),
])
def test_bad_config_fails_before_any_process(models, change, message):
    base = dict(model='nc_test_models:mlp_lm', data='copy', data_args=dict(length=4, n_train=100, n_val=10),
                out_dir=str(models / 'bad'))
    if change.get('data_args'): base['data'] = 'shakespeare'
    with pytest.raises((ValueError, KeyError), match=message):
        launch({**base, **change}, nproc=2, backend='torchrun')
    assert not (models / 'bad').exists()  # nothing was started, nothing written

def test_cancel_writes_checkpoint_and_resume_finishes(models):
    cfg = job_config(models / 'cancel', steps=200, ckpt_every=0, eval_every=100)
    cfg.model_args['slow_after'] = 10  # 20 ms per step after step 10: the job is still running when cancelled
    job = launch(cfg)
    deadline = time.monotonic() + 120
    while job.status().get('step', 0) < 20:
        assert time.monotonic() < deadline and job.state not in ('failed', 'killed', 'done'), job.logs()
        time.sleep(0.05)
    assert job.cancel(timeout=60) == 'stopped'
    step = job.status()['step']
    assert 20 <= step < 200 and step % 10 == 0  # it stops at a logging step...
    assert checkpoints(models / 'cancel' / 'checkpoints')[-1].name == f'step_{step:08d}.pt'  # ...and saves there
    resumed = job.resume()
    assert resumed.wait(120) == 'done', resumed.logs()
    assert final_state(models / 'cancel')['step'] == 200

def test_toml_config_and_unknown_keys(tmp_path):
    from neuralcircuits.train.jobs import load_config
    path = tmp_path / 'job.toml'
    path.write_text('model = "transformer"\ndata = "copy"\nout_dir = "x"\n[fit]\nsteps = 7\nlr = 0.01\n[data_args]\nlength = 3\n')
    cfg = load_config(path)
    assert (cfg.model, cfg.fit.steps, cfg.fit.lr, cfg.data_args) == ('transformer', 7, 0.01, dict(length=3))
    path.write_text('model = "transformer"\n[fit]\nstep = 7\n')
    with pytest.raises(ValueError, match="FitConfig has no field 'step'; did you mean 'steps'"): load_config(path)
    with pytest.raises(FileNotFoundError, match='does not exist'): load_config(tmp_path / 'missing.toml')

def test_submitit_local_backend(models):
    "The submitit backend (its local executor here; Slurm on a cluster) runs the same job."
    job = launch(job_config(models / 'sub', steps=20, ckpt_every=10, eval_every=20), backend='submitit', cluster='local',
                 timeout_min=5)
    assert job.wait(120) == 'done', job.logs()
    assert job.status()['step'] == 20 and final_state(models / 'sub')['step'] == 20
