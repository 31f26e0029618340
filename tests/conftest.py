import warnings

import pytest
import torch

import qtorch


@pytest.fixture(params=qtorch.supported_isas())
def isa(request):
    """Runs a test once per kernel path this CPU supports."""
    with qtorch.kernel_isa_scope(request.param):
        yield request.param


@pytest.fixture
def native():
    """Torch's own quantized ops may warn about their deprecated dtypes: allowed here only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(autouse=True)
def _fresh_seed():
    # Fresh random inputs every run; the seed is shown on failure.
    seed = torch.seed()
    yield seed
