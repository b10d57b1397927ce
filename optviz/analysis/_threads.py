"""torch's thread count for the length of a computation."""
from __future__ import annotations

import contextlib
from typing import Optional


@contextlib.contextmanager
def torch_threads(n: Optional[int]):
    """Run the block on ``n`` torch threads, then restore the count; ``None`` leaves it as it is."""
    # the same rule as optviz.mnist.train._threads (one of them is to go when the two are merged)
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
