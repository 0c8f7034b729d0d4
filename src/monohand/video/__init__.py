"""Video: frames in and out, hand tracks, temporal smoothing, and sequence reconstruction."""
