import pytest
import torch
from conftest import SIZE, make_tiny
from torch import nn

from hrnet.deploy import compare_outputs, conv_bn_pairs, fold_batchnorm


def _count_bn(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", ["pose_hrnet_w32", "seg_hrnetv2_w18_ocr", "cls_hrnet_w18"])
def test_folded_model_matches_eager_and_original_is_untouched(name):
    model = make_tiny(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, *SIZE)
    folded = fold_batchnorm(model, x[:1])
    assert _count_bn(folded) == 0 < _count_bn(model)  # every BN of HRNet follows a conv
    assert type(folded) is type(model) and not folded.training
    with torch.no_grad():
        parity = compare_outputs(model.eval()(x), folded(x), tolerance=1e-5)
    assert parity.ok, parity
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_folding_is_the_batchnorm_formula():
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.uniform_(), bn.bias.uniform_()
    model = nn.Sequential(conv, bn).eval()
    folded = fold_batchnorm(model, torch.randn(1, 3, 8, 8))
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(folded[0].weight, conv.weight * scale.view(-1, 1, 1, 1))
    torch.testing.assert_close(folded[0].bias, (conv.bias - bn.running_mean) * scale + bn.bias)
    assert isinstance(folded[1], nn.Identity)


class ConvOutputReused(nn.Module):
    """The conv output feeds the BN and a skip connection: folding would change the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class SharedConv(nn.Module):
    """One conv called twice, only once followed by the BN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(self.conv(x)) + self.conv(x)


@pytest.mark.parametrize("cls", [ConvOutputReused, SharedConv])
def test_unsafe_pairs_are_left_alone(cls):
    model = cls().eval()
    with torch.no_grad():
        model.bn.running_mean.fill_(0.5)
    x = torch.randn(1, 3, 4, 4)
    assert conv_bn_pairs(model, x) == []
    folded = fold_batchnorm(model, x)
    assert isinstance(folded.bn, nn.BatchNorm2d)
    torch.testing.assert_close(folded(x), model(x))
