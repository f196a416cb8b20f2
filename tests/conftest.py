import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "vaeloss", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("vaeloss")

# Under pytest-xdist each worker is its own process: with torch's default of one thread per
# core, two workers on a 2-core machine oversubscribe it (several times slower). One thread
# per worker, for its subprocesses too.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
