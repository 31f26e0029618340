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


# Hypothesis budgets (tests/test_properties.py, tests/test_fuzz.py): "ci" keeps the suite quick,
# "fuzz" is the long run of make fuzz, "sanitize" that of make test-sanitize. HYPOTHESIS_PROFILE selects one.
def _register_hypothesis_profiles():
    import os

    from hypothesis import HealthCheck, settings

    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile("ci", max_examples=15, deadline=None, suppress_health_check=quiet, print_blob=True)
    settings.register_profile("fuzz", max_examples=600, deadline=None, suppress_health_check=quiet, print_blob=True)
    # make test-sanitize: the instrumented build is ~3x slower, and finds what the normal one cannot.
    settings.register_profile("sanitize", max_examples=40, deadline=None, suppress_health_check=quiet,
                              print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_register_hypothesis_profiles()
