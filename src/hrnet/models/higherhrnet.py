"""HigherHRNet (Cheng et al., CVPR 2020): bottom-up pose on the HRNet backbone.

The backbone's 1/4-resolution output feeds ``final_layers[0]`` (K heatmaps, plus K associative-embedding
tag maps when that output is trained with the AE loss). Each deconvolution module then concatenates the
features with the previous prediction, upsamples x2 with a transposed conv + BN + ReLU, refines with
``num_basic_blocks`` BasicBlocks, and ``final_layers[i + 1]`` predicts heatmaps at the new resolution::

    backbone 1/4 --final_layers.0--> [heatmaps K | tags K]            (1/4)
        cat --deconv_layers.0 (ConvT 4x4 s2, BN, ReLU, 4 BasicBlocks)--> final_layers.1 --> heatmaps K (1/2)

``forward`` returns the list of predictions, lowest resolution first, as the official
``pose_higher_hrnet.py``; module names are the official ones, so its checkpoints load with
``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from .heads import init_official
from .hrnet import BackboneConfig, BasicBlock, HighResolutionNet

__all__ = ["PoseHigherHRNet", "DECONV_PADDING"]

#: transposed-conv kernel -> (padding, output_padding) giving an exact x2 upsampling (official table)
DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class PoseHigherHRNet(HighResolutionNet):
    """HigherHRNet: ``(N, 3, H, W) -> [(N, K + T, H/4, W/4), (N, K, H/2, W/2)]``.

    ``with_ae[i]`` says whether output ``i`` carries tag maps (``T = K`` with ``tag_per_joint``, else 1);
    the official models train tags at 1/4 only (``(True, False)``). ``deconv_channels`` has one entry per
    deconvolution module (default: one module as wide as the backbone's high-resolution branch);
    ``deconv_kernels`` and ``cat_output`` are per module too.
    """

    head_modules = ("final_layers", "deconv_layers")

    def __init__(self, cfg: BackboneConfig, num_joints: int = 17, tag_per_joint: bool = True,
                 with_ae: Sequence[bool] | None = None, deconv_channels: Sequence[int] | None = None,
                 deconv_kernels: Sequence[int] | None = None, num_basic_blocks: int = 4,
                 cat_output: Sequence[bool] | None = None, final_conv_kernel: int = 1) -> None:
        # The official model keeps only the high-resolution output of the last module.
        super().__init__(replace(cfg, multi_scale_output=False))
        deconv_channels = tuple(deconv_channels or (cfg.width,))
        n = len(deconv_channels)
        with_ae = tuple(bool(a) for a in with_ae) if with_ae is not None else (True,) + (False,) * n
        deconv_kernels = tuple(deconv_kernels or (4,) * n)
        cat_output = tuple(bool(c) for c in cat_output) if cat_output is not None else (True,) * n
        for name, values, length in (("with_ae", with_ae, n + 1), ("deconv_kernels", deconv_kernels, n),
                                     ("cat_output", cat_output, n)):
            if len(values) != length:
                raise ValueError(f"{name}={list(values)} needs {length} entries: one per "
                                 f"{'output' if name == 'with_ae' else 'deconvolution module'} "
                                 f"({n} deconvolution module(s) from deconv_channels={list(deconv_channels)})")
        bad = [k for k in deconv_kernels if k not in DECONV_PADDING]
        if bad:
            raise ValueError(f"deconv_kernels={list(deconv_kernels)}: kernels must be one of {sorted(DECONV_PADDING)}")
        if final_conv_kernel not in (1, 3):
            raise ValueError(f"final_conv_kernel={final_conv_kernel}: expected 1 or 3")
        self.num_joints = num_joints
        self.tag_channels = num_joints if tag_per_joint else 1
        self.tag_per_joint = tag_per_joint
        self.with_ae = with_ae
        self.cat_output = cat_output
        out_channels = [num_joints + (self.tag_channels if ae else 0) for ae in with_ae]
        in_channels = [cfg.width, *deconv_channels]
        self.final_layers = nn.ModuleList(
            nn.Conv2d(c, k, final_conv_kernel, 1, final_conv_kernel // 2)
            for c, k in zip(in_channels, out_channels, strict=True)
        )
        self.deconv_layers = nn.ModuleList(
            self._make_deconv(in_channels[i] + (out_channels[i] if cat_output[i] else 0), deconv_channels[i],
                              deconv_kernels[i], num_basic_blocks)
            for i in range(n)
        )
        init_official(self, "normal", conv_bias_zero=True)

    def _make_deconv(self, cin: int, cout: int, kernel: int, num_blocks: int) -> nn.Sequential:
        """ConvT x2 + BN + ReLU, then BasicBlocks (each wrapped in a Sequential, as the official keys)."""
        padding, output_padding = DECONV_PADDING[kernel]
        norm = self.cfg.norm_layer
        up = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel, 2, padding, output_padding, bias=False),
                           norm(cout), nn.ReLU(inplace=True))
        return nn.Sequential(up, *(nn.Sequential(BasicBlock(cout, cout, norm=norm)) for _ in range(num_blocks)))

    @property
    def output_strides(self) -> tuple[int, ...]:
        """Input pixels per output pixel, per output (4, 2 for the official models)."""
        return tuple(4 // 2**i for i in range(len(self.final_layers)))

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = self.forward_branches(x)[0]
        outputs = [self.final_layers[0](feats)]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                feats = torch.cat([feats, outputs[-1]], dim=1)
            feats = deconv(feats)
            outputs.append(self.final_layers[i + 1](feats))
        return outputs
