"""The MNIST models: shapes, sizes, seeded initialisation, the registry."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from optviz.errors import UnknownName
from optviz.mnist.models import MODELS, build_model, num_parameters

EXPECTED_PARAMETERS = {"mlp": 101_770, "deep_mlp": 242_762, "cnn": 20_490}


def test_registry_is_complete():
    assert set(MODELS) == set(EXPECTED_PARAMETERS)
    for name, info in MODELS.items():
        assert f"{EXPECTED_PARAMETERS[name]:,}" in info.description


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes_and_parameter_counts(name):
    model = build_model(name, seed=0)
    logits = model(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 10) and logits.dtype == torch.float32
    assert num_parameters(model) == EXPECTED_PARAMETERS[name]
    logits.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mlp_is_the_lecture_network():
    layers = list(build_model("mlp"))
    assert [type(m) for m in layers] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert (layers[1].in_features, layers[1].out_features) == (784, 128)
    assert (layers[3].in_features, layers[3].out_features) == (128, 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_seeded_init_is_deterministic(name):
    rng_before = torch.get_rng_state()
    a, b, c = build_model(name, seed=7), build_model(name, seed=7), build_model(name, seed=8)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is neither read nor advanced
    for (ka, pa), (kb, pb), (_, pc) in zip(a.state_dict().items(), b.state_dict().items(), c.state_dict().items()):
        assert ka == kb and torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


def test_unseeded_build_follows_the_global_rng():
    torch.manual_seed(3)
    a = build_model("mlp")
    torch.manual_seed(3)
    b = build_model("mlp")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_unknown_name():
    with pytest.raises(UnknownName, match=r"unknown model 'resnet'; choose one of: cnn, deep_mlp, mlp"):
        build_model("resnet")
