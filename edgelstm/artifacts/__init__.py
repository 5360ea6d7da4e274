"""Everything about a file edgelstm reads or writes: manifests, I/O specs, ONNX facts, sessions."""
