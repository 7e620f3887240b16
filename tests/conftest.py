"""Shared test configuration.

* Hypothesis runs derandomized (same examples on every run) without deadlines.
* Every test is checked not to change the global torch RNG: fblitz draws all
  randomness from explicit keys, and the tests build their data the same way
  (``tests.helpers.randn``).
"""

import hypothesis
import pytest
import torch

hypothesis.settings.register_profile(
    "fblitz",
    deadline=None,
    max_examples=40,
    derandomize=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("fblitz")


@pytest.fixture(autouse=True)
def global_rng_untouched():
    torch.set_num_threads(2)
    state = torch.get_rng_state()
    yield
    assert torch.equal(state, torch.get_rng_state()), "the test changed the global torch RNG state"
