"""``python -m exporter.onnx``: see :mod:`exporter.onnx`."""

import sys

from exporter.onnx import main

if __name__ == "__main__":
    sys.exit(main())
