"""Images, datasets, colour conversion and MATLAB-compatible resizing."""
