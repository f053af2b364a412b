"""Writes Tests/LeNetKitTests/Fixtures/python-written.safetensors with the
reference implementation, so SafetensorsTests can check that our reader loads
a file we did not write ourselves.

    /work/venv/bin/python Scripts/make_safetensors_fixture.py

Needs numpy and safetensors. The values are exact in their dtypes, so the
test can compare them with ==.
"""
import os

import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "Tests", "LeNetKitTests", "Fixtures", "python-written.safetensors")

tensors = {
    # (2, 3), F32
    "conv.weight": np.array([[1.0, -2.5, 0.125], [3.0, 4.0, -0.0]], dtype=np.float32),
    # (2,), F32
    "conv.bias": np.array([0.5, -0.5], dtype=np.float32),
    # (), a scalar, F32
    "step": np.array(7.0, dtype=np.float32),
    # (1, 2, 1, 2), 4-D, F32
    "kernel4d": np.arange(4, dtype=np.float32).reshape(1, 2, 1, 2) - 1.5,
    # (3,), F64: our reader converts to Float
    "double": np.array([0.25, -1.0, 1e10], dtype=np.float64),
    # (3,), F16: our reader converts to Float
    "half": np.array([1.0, -2.0, 65504.0], dtype=np.float16),
}
metadata = {"format": "np", "source": "make_safetensors_fixture.py"}
save_file(tensors, path, metadata=metadata)
print(path, os.path.getsize(path), "bytes")
