"""WireNet: the small U-Net of the learned engine.

Sized for one CPU core: the full-resolution level has a single 3x3 convolution (the Hessian
features already place the wire to a pixel), and the context that tells a wire from a catheter
wall or a bone edge comes from three levels of downsampling (receptive field about 100 px).
Skips are added, not concatenated, so no decoder convolution runs on doubled channels.
"""

import torch
from torch import nn
import torch.nn.functional as F

from features import CHANNELS


def conv(cin, cout, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def pool(x):
    """2x2 max pooling as a 1x2 then a 2x1 pool: the same maximum, but tract (0.23) runs a 2x2
    pool with stride 2 one bounds-checked pixel at a time, and these two along whole rows (a
    128² tile's three pools 0.47 -> 0.21 ms)."""
    return F.max_pool2d(F.max_pool2d(x, (1, 2)), (2, 1))


class WireNet(nn.Module):
    """Input [N, CHANNELS, H, W] (H, W multiples of 8); output the wire probability [N, 1, H, W]
    from `forward`, its logit from `logits`."""

    def __init__(self, width=8):
        super().__init__()
        w0, w1, w2 = width, 2 * width, 4 * width
        self.enc0 = conv(CHANNELS, w0)
        self.enc1 = conv(w0, w1)
        self.enc2 = nn.Sequential(conv(w1, w2), conv(w2, w2))
        self.enc3 = conv(w2, w2, dilation=2)
        self.dec2 = conv(w2, w1)
        self.dec1 = conv(w1, w0)
        self.head = nn.Conv2d(w0, 1, 1)

    def logits(self, x):
        e0 = self.enc0(x)
        e1 = self.enc1(pool(e0))
        e2 = self.enc2(pool(e1))
        e3 = self.enc3(pool(e2))
        d2 = self.dec2(F.interpolate(e3, scale_factor=2.0, mode="nearest") + e2)
        d1 = self.dec1(F.interpolate(d2, scale_factor=2.0, mode="nearest") + e1)
        d0 = F.relu(F.interpolate(d1, scale_factor=2.0, mode="nearest") + e0)
        return self.head(d0)

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


def parameters(model):
    return sum(p.numel() for p in model.parameters())
