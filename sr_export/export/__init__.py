"""PyTorch -> ONNX: trace, check, simplify, stamp metadata."""
