"""The torch-free core every layer builds on: errors, file writing, bundled resources,
artifact metadata and formats, sizes, tolerances and the model contract."""
