"""Device and seed choices, made once per notebook and printed so the reader knows where it runs."""
import contextlib
import os
import random

import numpy as np
import torch


def pick_device(verbose: bool = True) -> torch.device:
    """cuda, then mps, then cpu. Graded runs are pinned to the CPU for determinism."""
    if os.environ.get("COURSE_FORCE_CPU") or os.environ.get("NBGRADER_EXECUTION"):
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        print(f"using device: {device} ({name})")
    return device


def seed_everything(seed: int = 1337) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; a no-op context elsewhere (the CPU policy lives with the training loop)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
