import sys, math, torch, statistics
from pathlib import Path
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import list_images, read_image
from blinddps.physics.blur import blur
from blinddps.physics.kernel_geometry import centre_kernel
from blinddps.metrics.image import rgb_to_luma
torch.set_num_threads(1)

def extent(k, frac=20):
    k = centre_kernel(k[None,None].double())[0,0]
    K = k.shape[-1]; c = K//2
    r, cc = torch.nonzero(k > k.max()/frac, as_tuple=True)
    return int(2*max((r-c).abs().max(), (cc-c).abs().max())+1)

def dir_autocorr(y, angles, maxlag):
    # y (H,W) grey; derivative along theta, normalised autocorrelation along theta
    H, W = y.shape
    gx = y[:-1,1:] - y[:-1,:-1]; gy = y[1:,:-1] - y[:-1,:-1]
    out = []
    h, w = gx.shape
    win = torch.outer(torch.hann_window(h, periodic=False, dtype=y.dtype), torch.hann_window(w, periodic=False, dtype=y.dtype))
    for th in angles:
        d = math.cos(th)*gx + math.sin(th)*gy
        d = (d - d.mean())*win
        F = torch.fft.rfft2(d, s=(2*h, 2*w))
        R = torch.fft.irfft2(F.abs()**2, s=(2*h, 2*w))
        # sample along theta with bilinear
        t = torch.arange(0, maxlag+1, dtype=y.dtype)
        px = t*math.cos(th); py = t*math.sin(th)
        x0 = px.floor(); y0 = py.floor(); fx = px-x0; fy = py-y0
        def at(yy, xx): return R[yy.long() % (2*h), xx.long() % (2*w)]
        v = (at(y0,x0)*(1-fx)*(1-fy) + at(y0,x0+1)*fx*(1-fy) + at(y0+1,x0)*(1-fx)*fy + at(y0+1,x0+1)*fx*fy)
        out.append(v / v[0])
    return torch.stack(out)

def main():
    files = list_images([Path('/work/shared/data/train/bsds500')])
    sizes = [9,13,17,21,27,33,41,51,64]
    angles = [i*math.pi/8 for i in range(8)]
    rows = []
    for i in range(int(sys.argv[1]), int(sys.argv[2])):
        g = torch.Generator().manual_seed(i)
        S = sizes[i % len(sizes)]
        inten = 0.2 + 0.8*torch.rand(1, generator=g).item()
        k = MotionKernelGenerator(size=S, intensity=inten).sample(1, generator=g)["kernel"][0,0].double()
        x = read_image(files[i]).tensor.double()
        H, W = x.shape[-2:]; s = 256
        x = x[..., (H-s)//2:(H-s)//2+s, (W-s)//2:(W-s)//2+s]
        y = blur(x, k, padding="reflect")
        y = (y + 0.01*torch.randn(y.shape, generator=g, dtype=y.dtype)).clamp(0,1)
        y = (y*255).round()/255
        yl = rgb_to_luma(y)[0,0]
        R = dir_autocorr(yl, angles, 100)
        rows.append((S, extent(k), R))
        print(i, S, extent(k), ' '.join(f'{v:.2f}' for v in R.amax(0)[[1,2,4,8,12,16,24,32,48,64]].tolist()), flush=True)
    torch.save(rows, f'/tmp/sup/rows_{sys.argv[1]}.pt')
main()
