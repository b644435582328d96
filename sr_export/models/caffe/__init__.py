"""Reading Caffe models without Caffe: the protobuf schema, the graph, and a NumPy forward pass."""
