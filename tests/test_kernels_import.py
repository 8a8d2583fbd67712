"""Importing the library and its kernels package stays light: no triton until a Triton path runs."""
import os, subprocess, sys

def run(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=True).stdout.strip()

def test_import_does_not_load_triton():
    assert run("import sys, neuralcircuits as nc, neuralcircuits.kernels as K; K.rms_norm; K.delta_rule; K.attention; "
               "K.depth_attention; K.sinkhorn; print('triton' in sys.modules)") == 'False'

def test_reference_path_does_not_load_triton():
    assert run("import sys, torch, neuralcircuits.kernels as K; K.attention(*(torch.randn(1, 4, 2, 8) for _ in range(3))); "
               "print('triton' in sys.modules)") == 'False'

def test_forcing_triton_on_cpu_switches_on_the_interpreter():
    assert run("import os, torch, neuralcircuits.kernels as K; y = K.rms_norm(torch.randn(2, 16), torch.ones(16), backend='triton'); "
               "print(os.environ.get('TRITON_INTERPRET'), tuple(y.shape))") == '1 (2, 16)'
