"""Facts read from a model file (ONNX, TFLite) before anything runs: params, weight bytes,
storage, FLOPs, input and output signatures.

A leaf: models, optimize and measure import it and it imports none of them, because the host
reads these facts off a file long before (and whether or not) the file is measured.
"""
