import sys, json, glob, statistics as st
sys.path.insert(0, '/tmp/sup')
import torch
torch.set_num_threads(2)
from shakeproxy import setup
from blinddps.metrics import kernel_mnc
from blinddps.metrics.error_ratio import error_ratios, levin_deconv
from blinddps.physics.solves import solve_kernel
from blinddps.estimation.cleanup import final_threshold
from blinddps.physics.fft import grad

def isd(x, y, k, rho, rounds, iters, ef, eps, thresh):
    gx, gy = grad(x)
    energy = (gx.pow(2).sum() + gy.pow(2).sum())
    for _ in range(rounds):
        m = k.max()
        outside = (k <= eps * m).to(k.dtype)
        pen = 2 * energy * rho * m * outside
        k = solve_kernel(x, y, k, None, iters=iters, penalty=pen, edge_fraction=ef)
    return final_threshold(k, thresh) if thresh else k

variants = {
    "plain30_ef1": dict(rho=0.0, rounds=1, iters=30, ef=1.0, eps=0.0, thresh=0),
    "isd05_ef1": dict(rho=0.05, rounds=3, iters=30, ef=1.0, eps=0.05, thresh=0),
    "isd15_ef1": dict(rho=0.15, rounds=3, iters=30, ef=1.0, eps=0.05, thresh=0),
    "isd05_ef01": dict(rho=0.05, rounds=3, iters=30, ef=0.1, eps=0.05, thresh=0),
    "isd05_ef1_t20": dict(rho=0.05, rounds=3, iters=30, ef=1.0, eps=0.05, thresh=20),
    "isd02_ef1": dict(rho=0.02, rounds=3, iters=30, ef=1.0, eps=0.05, thresh=0),
}
rows = []
for f in sorted(glob.glob('/tmp/sup/db_*.pt')):
    i = int(f.split('_')[-1][:-3])
    d = torch.load(f)
    x, y, kt = setup(i)
    xh = d["image"].double().reshape(1, 1, *y.shape[-2:])
    k0 = d["kernel"].double().reshape(1, 1, *d["kernel"].shape[-2:])
    def score(k):
        return (float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                float(kernel_mnc(k.float(), kt[None, None].float())[0]))
    row = {"index": i, "base": score(k0)}
    for name, v in variants.items():
        row[name] = score(isd(xh, y, k0, **v))
    rows.append(row)
    print(i, ' '.join(f"{n}:{r[0]:.2f}/{r[1]:.2f}" for n, r in row.items() if n != "index"), flush=True)
for n in ["base", *variants]:
    rr = [r[n][0] for r in rows]
    print(n, 'median %.2f' % st.median(rr), 'r<=2 %d/%d' % (sum(x <= 2 for x in rr), len(rr)), 'r<=3 %d' % sum(x <= 3 for x in rr), 'mnc %.3f' % st.mean(r[n][1] for r in rows))
