"""gaussian_blur is torchvision's now: the same numbers as the separable blur it replaced."""
import math

import pytest
import torch
import torch.nn.functional as F

from ganinv.data.degrade import gaussian_blur


def separable_blur(x, sigma):
    """The hand-written blur gaussian_blur used to be: a 2·ceil(3σ)+1 kernel (capped at 2·min(H, W)−1) built in
    float64, reflected borders, rows then columns."""
    k = min(2 * math.ceil(3.0 * sigma) + 1, 2 * min(x.shape[-2:]) - 1)
    r = k // 2
    t = torch.arange(k, dtype=torch.float64) - r
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, kernel.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(y, kernel.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c).clamp(0.0, 1.0)


@pytest.mark.parametrize("sigma", [0.3, 0.8, 1.5, 4.0, 10.0])  # 10: the kernel capped by a 16 px side
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
def test_torchvision_blur_matches_the_separable_one(sigma, dtype, tolerance):
    x = torch.rand(3, 3, 16, 20, generator=torch.Generator().manual_seed(0), dtype=dtype)
    # float32 differs in rounding only: torchvision builds its kernel in the image's dtype, the old one in float64
    assert (gaussian_blur(x, sigma) - separable_blur(x, sigma)).abs().max() <= tolerance
