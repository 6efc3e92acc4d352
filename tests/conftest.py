"""Shared test set-up: offline switches, a small thread budget, and the gpu marker's skip."""

import os

# The project never reaches for the network; tests prove it by running with the hub switched off.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# Under pytest-xdist (`make test` runs two workers, one per core) the commands a test starts as
# subprocesses get one thread too: a third and fourth thread on two cores slow every worker down.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import pytest
import torch

# One thread per test process: the tiny models of the tests are dominated by per-op overhead, which two
# OpenMP threads on a shared 2-core machine make up to 100x worse.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(
        reason="needs a CUDA device; none is visible (torch.cuda.is_available() is False)"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
