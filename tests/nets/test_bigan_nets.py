"""BiGAN's joint discriminator is table 6 of the paper."""
import torch


def test_joint_discriminator_matches_table_6():
    from ganinv.nets.bigan import JointDiscriminator

    D = JointDiscriminator(latent_dim=100, image_size=64, width=64, channels=3)
    widths = [m.out_channels for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 512, 512]
    assert D.joint_body[0][0].in_channels == 256 + 100
    assert D(torch.rand(2, 3, 64, 64), torch.rand(2, 100)).shape == (2,)
