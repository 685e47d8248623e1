import pytest
import torch

from cnndash.device import DeviceError, describe_device, resolve_device


def test_auto_picks_an_available_device():
    device = resolve_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    else:
        assert device.type in ("mps", "cpu")


def test_explicit_cpu_is_honoured():
    assert resolve_device("cpu") == torch.device("cpu")
    info = describe_device("cpu")
    assert info.kind == "cpu"
    assert f"{info.threads} thread" in info.description  # "1 thread", "2 threads"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match="CUDA"):
        resolve_device("cuda")


def test_unknown_device_is_rejected():
    with pytest.raises(DeviceError, match="Unknown device"):
        resolve_device("tpu")
