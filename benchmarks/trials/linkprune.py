"""Trial: Pan's pruning of kernel components under mass 0.1, but a component counts as part of the
kernel when it is linked to a heavy one through values >= low * max of the kernel step's
UNthresholded solution (the values kept are still those >= 0.05 max)."""
import torch, torch.nn.functional as F
_last = {}

def labels_of(support):
    b, _, k1, k2 = support.shape
    ids = torch.arange(1, k1 * k2 + 1, dtype=torch.float64).view(1, 1, k1, k2).expand(b, 1, k1, k2)
    lab = torch.where(support, ids, torch.zeros_like(ids))
    while True:
        new = torch.where(support, F.max_pool2d(lab, 3, stride=1, padding=1), lab)
        if torch.equal(new, lab):
            return lab.long()
        lab = new

def linked_prune(k, min_mass=0.1, low=0.01):
    from blinddps.estimation.cleanup import normalise
    raw = _last.get("raw")
    if raw is None or raw.shape != k.shape:
        from blinddps.estimation.cleanup import prune_components
        return prune_components(k, min_mass)
    b = k.shape[0]
    peak = raw.flatten(1).amax(1).view(-1, 1, 1, 1)
    weak = (raw >= low * peak) | (k > 0)
    lab = labels_of(weak).view(b, -1)  # components of the weak support
    mass = torch.zeros(b, lab.shape[1] + 1, dtype=k.dtype).scatter_add_(1, lab, k.reshape(b, -1))
    keep = torch.gather(mass, 1, lab).view_as(k) >= min_mass
    return normalise(k * keep)

def estimate_kernel_recording(bx, by, sx, sy, size, gamma=2.0, cg_iters=20):
    from blinddps.physics.fft import kernel_otf, otf_to_kernel
    from blinddps.estimation.cleanup import normalise
    shape = bx.shape[-2:]
    fsx, fsy = torch.fft.rfft2(sx), torch.fft.rfft2(sy)
    rhs = otf_to_kernel(fsx.conj() * torch.fft.rfft2(bx) + fsy.conj() * torch.fft.rfft2(by), (size, size), shape)
    gram = fsx.abs() ** 2 + fsy.abs() ** 2
    A = lambda k: otf_to_kernel(gram * kernel_otf(k, shape), (size, size), shape) + gamma * k
    dot = lambda a, c: (a * c).flatten(1).sum(1).view(-1, 1, 1, 1)
    k = torch.full_like(rhs, 1.0 / size**2); r = rhs - A(k); p = r; rs = dot(r, r)
    for _ in range(cg_iters):
        ap = A(p); a = rs / dot(p, ap).clamp_min(1e-30); k = k + a * p; r = r - a * ap
        new = dot(r, r); p = r + new / rs.clamp_min(1e-30) * p; rs = new
    _last["raw"] = k
    k = k * (k >= 0.05 * k.flatten(1).amax(1).view(-1, 1, 1, 1))
    return normalise(k)
