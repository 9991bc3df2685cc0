"""``python -m exporter.onnx``: see :mod:`exporter.legacy_cli`."""

import sys

from exporter.legacy_cli import main

if __name__ == "__main__":
    sys.exit(main())
