"""Preview grids for TensorBoard: the predicted mesh and skeleton over the inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from ..render.camera import project


def preview_images(batch: dict, out, faces: Tensor, n: int = 4) -> Tensor:
    """(n, 3, H, W) in [0, 1]: each input with the predicted mesh rendered over it, the label
    keypoints (white) and the predicted skeleton (colours) - for TensorBoard."""
    import numpy as np
    from PIL import Image, ImageDraw

    from ..render import Renderer
    from ..viz import draw_skeleton

    img = batch["image"][:n].detach().cpu()
    K = batch["K"][:n].detach().cpu().float()
    h, w = img.shape[-2:]
    with torch.no_grad():
        verts = out.vertices[:n].detach().cpu().float()
        r = Renderer((h, w))(verts, faces.cpu(), K)
        uv = project(out.joints[:n].detach().cpu().float(), K).numpy()
    a = 0.6 * r.silhouette[..., None]
    blend = ((1 - a) * img.permute(0, 2, 3, 1) + a * r.rgb).clamp(0, 1).numpy()
    pics = []
    for k in range(len(blend)):
        pic = Image.fromarray((blend[k] * 255).astype(np.uint8))
        draw = ImageDraw.Draw(pic)
        for x, y in batch["keypoints"][k].detach().cpu().numpy():
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], outline=(255, 255, 255))
        draw_skeleton(draw, uv[k], width=1)
        pics.append(torch.from_numpy(np.array(pic)).permute(2, 0, 1).float() / 255)
    return torch.stack(pics)
