"""The pSp encoder net (ganinv.nets.psp): offsets N×num_ws×w_dim for any number of layers, layers read from the right
pyramid level, heads that start at zero, and a size that grows by one head per layer."""
import pytest
import torch

from ganinv.nets.psp import COARSE, FINE, MEDIUM, IR50_UNITS, MapToStyle, PSPEncoder, style_levels


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(num_ws: int, w_dim: int = 8, image_size: int = 16, channels: int = 3, **kwargs) -> PSPEncoder:
    torch.manual_seed(0)
    return PSPEncoder(num_ws=num_ws, w_dim=w_dim, image_size=image_size, width=8, channels=channels, **kwargs)


@pytest.mark.parametrize("num_ws", [1, 6, 10, 14])
@pytest.mark.parametrize("image_size", [16, 32])
def test_offsets_have_one_w_per_layer(num_ws, image_size):
    encoder = tiny(num_ws, image_size=image_size).eval()
    x = torch.rand(3, 3, image_size, image_size)
    offsets = encoder(x)
    assert offsets.shape == (3, num_ws, 8)
    assert torch.equal(offsets, torch.zeros_like(offsets))  # every head starts at zero: E(x) = 0 → w = w̄
    for head in encoder.heads:  # moved heads answer, each for its own layer
        torch.nn.init.normal_(head.linear.weight)
    offsets = encoder(x)
    assert bool(torch.isfinite(offsets).all()) and offsets.abs().amin(dim=(0, 2)).gt(0).all()
    assert torch.allclose(encoder(x[:1]), offsets[:1], atol=1e-5)  # eval: an image's offsets ignore its batch


def test_a_ReStyle_input_takes_the_image_and_its_reconstruction():
    encoder = tiny(6, channels=2).eval()
    assert encoder(torch.rand(2, 2, 16, 16)).shape == (2, 6, 8)


def test_layers_read_psps_pyramid_levels():
    assert style_levels(18) == [COARSE] * 3 + [MEDIUM] * 4 + [FINE] * 11  # pSp at 1024 px
    assert style_levels(14) == [COARSE] * 3 + [MEDIUM] * 4 + [FINE] * 7  # pSp at 256 px
    assert style_levels(6) == [COARSE, MEDIUM, FINE, FINE, FINE, FINE]  # the same fractions, scaled
    assert style_levels(1) == [COARSE]
    for n in range(1, 20):  # coarse to fine, in the generator's order, always a coarse layer first
        levels = style_levels(n)
        assert levels == sorted(levels) and levels[0] == COARSE and len(levels) == n
    with pytest.raises(ValueError):
        style_levels(0)


def test_heads_reduce_their_level_to_one_by_one():
    encoder = tiny(14, image_size=32)
    coarse, medium, fine = encoder.pyramid(torch.rand(2, 3, 32, 32))
    assert [coarse.shape[-1], medium.shape[-1], fine.shape[-1]] == [2, 4, 8]  # 1/16, 1/8, 1/4 of the input
    assert coarse.shape[1] == medium.shape[1] == fine.shape[1]  # the FPN's one width
    assert encoder.heads[0](coarse).shape == encoder.heads[13](fine).shape == (2, 8)


def test_parameters_grow_linearly_with_the_number_of_layers():
    """One head per layer: adding a fine layer adds one fine head, whatever num_ws — not a dense layer onto the
    whole W+ latent, whose size would grow with (num_ws·w_dim)²."""
    counts = {n: parameters(tiny(n, w_dim=32, image_size=32)) for n in (10, 11, 12, 14, 18)}
    fine_head = parameters(tiny(10, w_dim=32, image_size=32).heads[-1])
    assert counts[11] - counts[10] == counts[12] - counts[11] == fine_head
    assert counts[18] - counts[14] == 4 * fine_head
    assert counts[18] < 2 * counts[10]  # the heads are small beside the backbone at this width
    # a head's size depends on w_dim and the pyramid's width alone, not on num_ws
    assert parameters(tiny(6, w_dim=32).heads[0]) == parameters(tiny(14, w_dim=32).heads[0])


def test_map_to_style_sizes():
    """3×3 stride-2 convs down to 1×1, then a w_dim×w_dim linear layer (pSp's GradualStyleBlock)."""
    head = MapToStyle(16, 8, spatial=4)
    assert parameters(head) == (9 * 16 * 8 + 8) + (9 * 8 * 8 + 8) + (8 * 8 + 8)
    assert parameters(MapToStyle(16, 8, spatial=1)) == (16 * 8 + 8) + (8 * 8 + 8)


def test_a_1024px_generator_is_encoded_at_256px_as_psp_does():
    """pSp's configuration (IR-SE50 units, 64 channels at 256 px up to 512, 18 layers of w_dim 512): about pSp's
    267M parameters (the paper's IR-SE50 body without its face-recognition head). Built on the meta device."""
    with torch.device("meta"):
        encoder = PSPEncoder(num_ws=18, w_dim=512, image_size=1024, width=64, channels=3, max_width=512,
                             units=IR50_UNITS)
    assert 260e6 < parameters(encoder) < 275e6
    assert [m.in_channels for m in encoder.lateral] == [256, 128]  # pSp's latlayer1, latlayer2


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="power-of-two"):
        tiny(4, image_size=12)
    with pytest.raises(ValueError, match="units"):
        tiny(4, units=(1, 1))
