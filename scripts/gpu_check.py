"The GPU checks of scripts/gpu_check.sh, step by step; each step reports and the next one runs even if it fails."
import time, traceback
import torch

START = time.time()

def step(title):
    "Run the decorated function now as one numbered step, timing it and printing any failure."
    def run(fn):
        print(f"\n== [{time.time() - START:6.1f} s] {title}", flush=True)
        try: fn()
        except Exception: traceback.print_exc()
        return fn
    return run

if not torch.cuda.is_available(): raise SystemExit("no CUDA device: these checks need a GPU")
from neuralcircuits.bench.kernels import check_kernels, tune_tiles, bench_kernels, CHECK_BARS, _versions
print(torch.cuda.get_device_name(), '|', _versions())
results = {}

@step("correctness against the references (check_kernels, bf16 and fp32; bars " + str(CHECK_BARS) + ")")
def _():
    for dtype in (torch.bfloat16, torch.float32):
        wrong = [row['kernel'] for row in check_kernels('cuda', dtype) if not row['ok']]
        print(f"  {dtype}: " + (f"PAST THE BAR: {', '.join(wrong)}" if wrong else "every kernel within its bars"))

@step("packed LM: forward_packed and its backward never sync (torch.cuda.set_sync_debug_mode('error'))")
def _():
    from neuralcircuits.zoo.mixers.varlen import VarlenLM, VarlenConfig, pack
    cfg = VarlenConfig(vocab_size=256, max_len=2048, d_model=256, n_layers=4, n_heads=4)
    model = VarlenLM(cfg).cuda().to(torch.bfloat16)
    lengths = torch.randint(64, 2049, (16,), generator=torch.Generator().manual_seed(0))
    tokens = torch.randint(256, (16, 2048), device='cuda')
    def forward():
        packing = pack(lengths, 2048, 'cuda')               # once per batch, host lengths
        return model.forward_packed(tokens.flatten()[packing.rows], packing).float().sum()
    forward().backward(); torch.cuda.synchronize()           # compile the kernels first
    torch.cuda.set_sync_debug_mode('error')                  # our code: the forward must not sync at all
    try: loss = forward()
    finally: torch.cuda.set_sync_debug_mode(0)
    print("  pack + forward_packed: no synchronisation")
    import warnings
    with warnings.catch_warnings(record=True) as caught:     # the backward: report any torch op that syncs
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try: loss.backward()
        finally: torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    syncs = [str(w.message).splitlines()[0] for w in caught if 'synchroniz' in str(w.message)]
    print(f"  backward: {len(syncs)} synchronising operation(s)" + ''.join(f"\n    {m}" for m in syncs[:5]))

@step("packed LM: the forward captured in a CUDA graph replays to the eager result")
def _():
    from neuralcircuits.zoo.mixers.varlen import VarlenLM, VarlenConfig, pack
    from neuralcircuits.bench.kernels import _cuda_graph
    model = VarlenLM(VarlenConfig(vocab_size=256, max_len=256, d_model=256, n_layers=4, n_heads=4)).cuda().to(torch.bfloat16)
    packing = pack(torch.linspace(32, 256, 8).long(), 256, 'cuda')
    flat = torch.randint(256, (8 * 256,), device='cuda')[packing.rows]
    with torch.no_grad():
        eager = model.forward_packed(flat, packing)
        replay = _cuda_graph(lambda: model.forward_packed(flat, packing))
        print(f"  graph replay equals eager: {torch.equal(replay(), eager)}")

@step("tiles for this card (attention backward, selective scan)")
def _(): results['tiles'] = tune_tiles('cuda'); print(f"  chosen: {results['tiles']}")

@step("nc bench kernels (checks again, then times)")
def _(): results['rows'] = bench_kernels('cuda')

@step("the bars of issue 20 (ratios, not asserted)")
def _():
    def ratio(kernel, shape_has=''):
        found = [r for r in results.get('rows', []) if r['kernel'] == kernel and shape_has in r['shape'] and r['goal']]
        return found[0]['speedup'] if found else None
    for label, value, bar in (("attention fwd+bwd vs SDPA flash (b=4 t=4096 h=16 d=64 bf16)", ratio('attention fwd+bwd', 'h_kv=16'), 1.0),
                              ("varlen LM fwd vs padded (b=16, 64..2048, m=1024, 12 layers, bf16)", ratio('varlen LM fwd'), 1.3),
                              ("delta rule fwd+bwd vs fla chunk_delta_rule", ratio('delta rule fwd+bwd'), 1.0)):
        print(f"  {label}: " + ('not measured' if value is None else f"{value:.2f}x, bar {bar}x: {'met' if value >= bar else 'NOT met'}"))
    print(f"  total {time.time() - START:.0f} s")
