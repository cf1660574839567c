"""Device choice: auto follows CUDA's presence; asking for missing CUDA is a clear error."""

from __future__ import annotations

import pytest
import torch

from psamf.device import resolve_device


def test_auto_and_none_pick_cuda_only_where_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected


def test_explicit_devices_pass_through():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1", torch.device("cuda:0")])
def test_missing_cuda_is_an_error_naming_the_fix(name):
    with pytest.raises(ValueError, match="CUDA is not available.*use cpu or auto"):
        resolve_device(name)


def test_unknown_device_name_is_an_error():
    with pytest.raises(ValueError, match="'tpu-ish': not a device name"):
        resolve_device("tpu-ish")
