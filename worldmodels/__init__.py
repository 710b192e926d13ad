"""World Models (Ha & Schmidhuber, 2018) on CarRacing: V (VAE), M (MDN-RNN) and C (linear controller)."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ INFO lines (oneDNN notices, absl preamble) drown the progress output of every stage.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
