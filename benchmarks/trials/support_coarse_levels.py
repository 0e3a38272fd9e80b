import sys, math, torch, time
from pathlib import Path
import torch.nn.functional as F
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import list_images, read_image
from blinddps.physics.blur import blur
from blinddps.physics.kernel_geometry import centre_kernel
from blinddps.metrics.image import rgb_to_luma
from blinddps.baselines import pan_l0 as P
from blinddps.baselines._l0_ops import resize_kernel
from blinddps.solvers.kernel_search import KernelSearchConfig, search_params, prior_denoised
from blinddps.priors.bundle import load_prior
torch.set_num_threads(1)

def extent(k, frac=20):
    k = centre_kernel(k[None,None].double())[0,0]
    K = k.shape[-1]; c = K//2
    r, cc = torch.nonzero(k > k.max()/frac, as_tuple=True)
    return int(2*max((r-c).abs().max(), (cc-c).abs().max())+1)

prior = load_prior("natural-rgb-3", kind="image")
files = list_images([Path(sys.argv[3])])
sizes = [9,13,17,21,27,33,41,51,64]
for i in range(int(sys.argv[1]), int(sys.argv[2])):
    g = torch.Generator().manual_seed(i)
    S = sizes[i % len(sizes)]
    inten = 0.2 + 0.8*torch.rand(1, generator=g).item()
    k = MotionKernelGenerator(size=S, intensity=inten).sample(1, generator=g)["kernel"][0,0].double()
    x = read_image(files[i]).tensor.double()
    if x.shape[1] == 1: x = x.expand(1,3,*x.shape[-2:])
    H, W = x.shape[-2:]; s = min(256, H, W)
    x = x[..., (H-s)//2:(H-s)//2+s, (W-s)//2:(W-s)//2+s]
    y = blur(x, k, padding="reflect")
    y = (y + 0.01*torch.randn(y.shape, generator=g, dtype=y.dtype)).clamp(0,1)
    y = (y*255).round()/255
    t0 = time.time()
    yd = prior_denoised(y.float(), prior, autocast=True).double()
    gray = rgb_to_luma(yd)
    params = search_params(KernelSearchConfig(), 65)
    levels = P._pyramid(65, params.pyramid_ratio, params.coarsest_kernel)
    lp, lgr = params.lambda_pixel, params.lambda_grad
    kk = None; ext = []
    for scale, ks in levels:
        if scale > 0.55: break
        if kk is None:
            kk = torch.zeros(1,1,ks,ks, dtype=gray.dtype); kk[..., ks//2, ks//2-1:ks//2+1] = 0.5
        else:
            kk = resize_kernel(kk, 1/params.pyramid_ratio, ks)
        size = (max(round(s*scale), ks+2),)*2
        ys = F.interpolate(gray, size=size, mode="bilinear", antialias=True, align_corners=False)
        kk, lp, lgr = P._level(ys, kk, lp, lgr, params)
        ext.append((round(scale,2), round(extent(kk[0,0])/scale)))
    print(i, S, extent(k), f'{time.time()-t0:.1f}s', ext, flush=True)
