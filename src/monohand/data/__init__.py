"""Data: dataset readers (FreiHAND, HO-3D, the real-photo set), 2D keypoint labels
(detection files, the MediaPipe labeller), augmentation, and the synthetic generator."""
