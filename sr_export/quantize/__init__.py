"""INT8: calibration recipes and data, activation statistics, quantised artifacts.

One calibration serves every INT8 target: the recipe (``calibration/*.toml``)
says which images and patches and which method; the statistics it yields are
cached per model weights and recipe; ONNX Runtime QDQ, TensorRT QDQ and the
TensorRT calibration cache are all written from them (the ONNX Runtime QDQ
rewritten for its fast integer kernels, ``onnxruntime_kernels``). TFLite files are
quantised by ai-edge-quantizer from ranges the same recipe and method give on
the TFLite graph itself (``tflite_*`` modules).
"""
