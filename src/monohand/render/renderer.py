"""The convenience renderer: a hand (or any closed mesh) + K -> silhouette, RGB, depth."""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .rasterize import (
    Fragments,
    MeshTopology,
    interpolate,
    interpolate_face_attr,
    mesh_topology,
    rasterize,
)
from .shade import default_light, lambert, sample_texture, vertex_normals


@dataclass
class RenderOutput:
    """(B, H, W, ...) images.

    Attributes:
        silhouette: anti-aliased coverage in [0, 1], differentiable w.r.t. the vertices.
        rgb: (B, H, W, 3) shaded colour composited over the background.
        depth: camera z in metres, 0 where empty.
        face_ids: long, -1 where empty.
        normals: (B, H, W, 3) unit camera-frame normals, 0 where empty.
        mask: bool, hard coverage.
    """

    silhouette: Tensor
    rgb: Tensor
    depth: Tensor
    face_ids: Tensor
    normals: Tensor
    mask: Tensor
    fragments: Fragments


@dataclass
class GBuffer:
    """The geometry's share of an image: fragments, unit normals (B, H, W, 3) and texture
    coordinates (B, H, W, 2) or None."""

    fragments: Fragments
    normals: Tensor
    uv: Tensor | None

    def take(self, pixels: Tensor) -> GBuffer:
        """The same buffer at the flat pixel indices ``pixels`` (P,) only, laid out as a
        (B, P, 1) image: ``Renderer.compose`` shades it alike, at the cost of P pixels (a
        loss that looks only where a fixed geometry covers the image needs no more)."""

        f = self.fragments
        frags = Fragments(*(take_pixels(getattr(f, k.name), pixels)
                            for k in dataclasses.fields(f)))  # fmt: skip
        return GBuffer(frags, take_pixels(self.normals, pixels), take_pixels(self.uv, pixels))


def take_pixels(image: Tensor | None, pixels: Tensor) -> Tensor | None:
    """(B, H, W, ...) -> (B, P, 1, ...): the flat pixel indices ``pixels`` (P,) of a batch of
    images as a one-pixel-wide image (``GBuffer.take``'s layout); None stays None."""
    return None if image is None else image.flatten(1, 2)[:, pixels].unsqueeze(2)


def _tensor(value, what: str, shape: tuple, floating: bool = True) -> Tensor:
    """``value`` if it is a tensor of ``shape`` (an int: that size; a name such as "B": any,
    sizes that must agree across arguments are compared by ``_same``) and of a floating
    (else integer) type; otherwise a ``TypeError`` / ``ValueError`` naming ``what`` and the
    shape expected."""
    want = "(" + ", ".join(map(str, shape)) + ")"
    if not isinstance(value, Tensor):
        raise TypeError(f"{what}: expected a torch tensor {want}, got a {type(value).__name__} "
                        "(torch.as_tensor(x) converts one)")  # fmt: skip
    if value.ndim != len(shape) or any(isinstance(d, int) and n != d
                                       for n, d in zip(value.shape, shape)):  # noqa: B905
        raise ValueError(f"{what}: expected shape {want}, got {tuple(value.shape)}")
    if floating != torch.is_floating_point(value):
        hint = " (a uint8 image: x.float() / 255)" if value.dtype == torch.uint8 else ""
        kind = "a floating-point" if floating else "an integer"
        raise TypeError(f"{what}: expected {kind} tensor, got {value.dtype}{hint}")
    return value


def _same(sizes: dict[str, int], what: str) -> None:
    """Arguments that must agree on one size (``what``: "batch size", "vertex count")."""
    if len(set(sizes.values())) > 1:
        said = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise ValueError(f"the arguments disagree on the {what}: {said}")


class Renderer(nn.Module):
    """Differentiable mesh renderer with OpenCV cameras, CPU and CUDA alike.

    Args:
        image_size: (H, W), or one int for a square image.
        sigma: softness of the silhouette edge, pixels.
        band: width of the anti-aliased band at the contour, pixels.
        background: RGB in [0, 1] behind the mesh.

    ``Renderer((224, 224))(vertices, faces, K, vertex_colors=..., light=...)`` returns a
    ``RenderOutput``. Albedo comes from ``texture`` + ``uvs`` + ``face_uvs`` (UV map), or
    ``vertex_colors``, or a uniform light grey.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        sigma: float = 0.5,
        band: float = 2.0,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        super().__init__()
        try:  # one integer (NumPy's too) for a square image, else (H, W)
            size = (operator.index(image_size),) * 2
        except TypeError:
            size = tuple(image_size)
        try:
            h, w = (operator.index(n) for n in size)
        except (TypeError, ValueError) as e:
            raise ValueError(f"image_size: expected (H, W) in whole pixels, or one integer, "
                             f"got {image_size!r}") from e  # fmt: skip
        if h <= 0 or w <= 0:
            raise ValueError(f"image_size: expected sizes above 0, got {image_size!r}")
        self.image_size = (h, w)
        self.sigma, self.band = sigma, band
        self.register_buffer("background", torch.tensor(background, dtype=torch.float32))
        self._topology: tuple[tuple[Tensor, int], MeshTopology] | None = None

    def topology(self, faces: Tensor, num_vertices: int | None = None) -> MeshTopology:
        """The topology of ``faces``, cached for the same tensor, unmodified. The cache holds
        the tensor itself, so its memory cannot be reused by another one that would look the
        same by address. A new ``faces`` is checked against ``num_vertices`` where given
        (once: the check reads the tensor, a wait on a GPU)."""
        cached = self._topology
        if cached is None or cached[0][0] is not faces or cached[0][1] != faces._version:
            if num_vertices is not None and len(faces) and (
                    int(faces.min()) < 0 or int(faces.max()) >= num_vertices):  # fmt: skip
                raise ValueError(f"faces: indices {int(faces.min())}..{int(faces.max())} "
                                 f"for {num_vertices} vertices")  # fmt: skip
            self._topology = ((faces, faces._version), mesh_topology(faces))
        return self._topology[1]

    def forward(
        self,
        vertices: Tensor,
        faces: Tensor,
        K: Tensor,
        vertex_colors: Tensor | None = None,
        texture: Tensor | None = None,
        uvs: Tensor | None = None,
        face_uvs: Tensor | None = None,
        light: Tensor | None = None,
        background: Tensor | None = None,
    ) -> RenderOutput:
        """Render.

        Args:
            vertices: (B, V, 3) camera-frame metres, B >= 1; faces: (F, 3) integer indices;
                K: (B, 3, 3) pixels. Tensors (``torch.as_tensor`` converts arrays); a
                mistake in any is a ``TypeError`` / ``ValueError`` naming it.
            vertex_colors: (B, V, 3) albedo in [0, 1].
            texture: (B, h, w, 3) albedo map in [0, 1]; uvs: (T, 2); face_uvs: (F, 3)
                into ``uvs``.
            light: (B, 11) S2HAND light (``shade.split_light``); default ``default_light``.
            background: (B, H, W, 3) image or (3,) colour behind the mesh, floating point in
                [0, 1] (a uint8 photo: ``photo.float() / 255``).
        """
        if texture is None:  # UVs without a texture are not needed
            uvs = face_uvs = None
        elif uvs is None or face_uvs is None:  # (both missing, gbuffer would leave UVs out)
            raise ValueError("a texture needs uvs and face_uvs")
        _tensor(vertices, "vertices", ("B", "V", 3))
        b, v = vertices.shape[:2]
        if vertex_colors is not None:
            _tensor(vertex_colors, "vertex_colors", ("B", "V", 3))
            _same({"vertices": b, "vertex_colors": vertex_colors.shape[0]}, "batch size")
            _same({"vertices": v, "vertex_colors": vertex_colors.shape[1]}, "vertex count")
        if texture is not None:
            _tensor(texture, "texture", ("B", "h", "w", 3))
            _same({"vertices": b, "texture": texture.shape[0]}, "batch size")
        if background is not None:
            image = (b, *self.image_size, 3)
            _tensor(background, "background", (3,) if getattr(background, "ndim", 1) == 1
                    else image)  # fmt: skip
        g = self.gbuffer(vertices, faces, K, uvs, face_uvs)
        if texture is not None:
            albedo = sample_texture(texture.to(vertices), g.uv)
        elif vertex_colors is not None:
            albedo = interpolate(vertex_colors.to(vertices), faces.to(vertices.device),
                                 g.fragments)  # fmt: skip
        else:
            albedo = torch.full_like(g.normals, 0.8)
        return self.compose(g, albedo, light, background)

    def gbuffer(
        self,
        vertices: Tensor,
        faces: Tensor,
        K: Tensor,
        uvs: Tensor | None = None,
        face_uvs: Tensor | None = None,
    ) -> GBuffer:
        """Rasterise once, shade many times: what the image needs from the geometry (see
        ``forward`` for the arguments; ``uvs`` + ``face_uvs`` add the texture coordinates).
        ``compose`` then shades it; the two together are ``forward``."""
        _tensor(vertices, "vertices", ("B", "V", 3))
        _tensor(faces, "faces", ("F", 3), floating=False)
        _tensor(K, "K", ("B", 3, 3))
        b = vertices.shape[0]
        if b == 0:
            raise ValueError("vertices: a batch of 0 meshes, nothing to render")
        _same({"vertices": b, "K": K.shape[0]}, "batch size")
        if uvs is not None:
            _tensor(uvs, "uvs", ("T", 2))
        if face_uvs is not None:
            _tensor(face_uvs, "face_uvs", (len(faces), 3), floating=False)
        faces = faces.to(vertices.device)
        frags = rasterize(vertices, faces, K.to(vertices.dtype), self.image_size,
                          self.topology(faces, vertices.shape[1]), self.sigma,
                          self.band)  # fmt: skip
        normals = interpolate(vertex_normals(vertices, faces), faces, frags)
        normals = torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)
        uv = None
        if uvs is not None or face_uvs is not None:
            if uvs is None or face_uvs is None:
                raise ValueError("a texture needs uvs and face_uvs")
            uv = interpolate_face_attr(uvs.to(vertices)[face_uvs.long()][None], frags)
        return GBuffer(frags, normals, uv)

    def compose(
        self,
        g: GBuffer,
        albedo: Tensor,
        light: Tensor | None = None,
        background: Tensor | None = None,
    ) -> RenderOutput:
        """Shade a ``GBuffer`` with per-pixel ``albedo`` (B, H, W, 3) and composite it."""
        frags, normals = g.fragments, g.normals
        b = normals.shape[0]
        if light is not None:
            _same({"vertices": b, "light": _tensor(light, "light", ("B", 11)).shape[0]},
                  "batch size")  # fmt: skip
        light = default_light(b, normals.dtype, normals.device) if light is None else light
        shaded = lambert(albedo, normals, light.to(normals))
        bg = self.background.to(normals) if background is None else background.to(normals)
        alpha = frags.alpha[..., None]
        rgb = alpha * shaded + (1 - alpha) * bg
        hard = frags.mask
        return RenderOutput(
            silhouette=frags.alpha,
            rgb=rgb,
            depth=frags.depth,
            face_ids=torch.where(hard, frags.face_ids, torch.full_like(frags.face_ids, -1)),
            normals=normals * hard[..., None],
            mask=hard,
            fragments=frags,
        )
