"""USD export: the head as a UsdSkel-bound mesh with one blend shape per blendshape (`usd-core`).

Layout, for tools that read UsdSkel blend shapes (usdview, Houdini, Omniverse, Maya's USD plug-in):

```
/Head                      SkelRoot (default prim)
/Head/Skeleton             Skeleton with one joint, `root` (blend shapes need a bound skeleton)
/Head/Skeleton/Animation   SkelAnimation: `blendShapes` names, `blendShapeWeights` all 0
/Head/Mesh                 Mesh with UsdSkelBindingAPI: skel:blendShapes + skel:blendShapeTargets
/Head/Mesh/<name>          BlendShape: `offsets` and `pointIndices` (only the vertices that move)
/Head/Looks/Head           UsdPreviewSurface, with the texture written beside the file
```

Coordinates as in head.glb: +Y up (the stage says so), the model's units kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from ..blendshape_model import BlendshapeModel
from ..errors import InputError


def _pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, UsdSkel, Vt
    except ImportError:
        raise InputError(
            "USD export needs the usd-core package: pip install 'usd-core>=24.8' (or t2bs[usd])."
        ) from None
    return Gf, Sdf, Usd, UsdGeom, UsdShade, UsdSkel, Vt


def usd_prim_name(name: str) -> str:
    """A valid USD prim name for a blendshape name (identifiers: letters, digits, underscores)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def write_head_usd(
    path: str | Path,
    model: BlendshapeModel,
    rotation: np.ndarray,
    *,
    names: list[str] | None = None,
    texture: np.ndarray | None = None,
) -> None:
    """Write the head with blend shapes to `path` (.usd, .usda or .usdc).

    Args:
        rotation: [3, 3] rotation from the model's coordinates to +Y up, +Z front.
        names: blend shape names (default the model's).
        texture: [H, W, 3] uint8 base colour; written as `<stem>_basecolor.png` beside the file.
    """
    Gf, Sdf, Usd, UsdGeom, UsdShade, UsdSkel, Vt = _pxr()
    path = Path(path)
    names = list(model.names if names is None else names)
    rotation = np.asarray(rotation, dtype=np.float64)
    positions = (model.neutral.astype(np.float64) @ rotation.T).astype(np.float32)
    partial = path.with_name(f".{path.name}.partial{path.suffix}")
    partial.unlink(missing_ok=True)
    stage = Usd.Stage.CreateNew(str(partial))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    root = UsdSkel.Root.Define(stage, "/Head")
    stage.SetDefaultPrim(root.GetPrim())

    skeleton = UsdSkel.Skeleton.Define(stage, "/Head/Skeleton")
    skeleton.CreateJointsAttr(Vt.TokenArray(["root"]))
    identity = Vt.Matrix4dArray([Gf.Matrix4d(1.0)])
    skeleton.CreateBindTransformsAttr(identity)
    skeleton.CreateRestTransformsAttr(identity)
    animation = UsdSkel.Animation.Define(stage, "/Head/Skeleton/Animation")
    animation.CreateBlendShapesAttr(Vt.TokenArray(names))
    animation.CreateBlendShapeWeightsAttr(Vt.FloatArray([0.0] * len(names)))
    UsdSkel.BindingAPI.Apply(skeleton.GetPrim()).CreateAnimationSourceRel().SetTargets([animation.GetPath()])

    mesh = UsdGeom.Mesh.Define(stage, "/Head/Mesh")
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(positions))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray([3] * len(model.faces)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(model.faces.astype(np.int32).ravel()))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    primvars = UsdGeom.PrimvarsAPI(mesh)
    if model.uv is not None:
        st = primvars.CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
        st.Set(Vt.Vec2fArray.FromNumpy(model.uv.astype(np.float32)))
    if model.colors is not None:
        display = primvars.CreatePrimvar("displayColor", Sdf.ValueTypeNames.Color3fArray, UsdGeom.Tokens.vertex)
        display.Set(Vt.Vec3fArray.FromNumpy((model.colors / 255.0).astype(np.float32)))

    binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    binding.CreateSkeletonRel().SetTargets([skeleton.GetPath()])
    binding.CreateJointIndicesPrimvar(constant=True, elementSize=1).Set(Vt.IntArray([0]))
    binding.CreateJointWeightsPrimvar(constant=True, elementSize=1).Set(Vt.FloatArray([1.0]))
    binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
    targets = []
    for name, shape in zip(names, model.shapes, strict=True):
        offsets = (shape.astype(np.float64) @ rotation.T).astype(np.float32)
        moving = np.flatnonzero(np.any(offsets != 0.0, axis=1)).astype(np.int32)
        blend = UsdSkel.BlendShape.Define(stage, mesh.GetPath().AppendChild(usd_prim_name(name)))
        blend.CreateOffsetsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(offsets[moving])))
        blend.CreatePointIndicesAttr(Vt.IntArray.FromNumpy(moving))
        targets.append(blend.GetPath())
    binding.CreateBlendShapesAttr(Vt.TokenArray(names))
    binding.CreateBlendShapeTargetsRel().SetTargets(targets)

    material = UsdShade.Material.Define(stage, "/Head/Looks/Head")
    surface = UsdShade.Shader.Define(stage, "/Head/Looks/Head/Surface")
    surface.CreateIdAttr("UsdPreviewSurface")
    surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.8)
    surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    if texture is not None and model.uv is not None:
        texture_path = path.with_name(f"{path.stem}_basecolor.png")
        Image.fromarray(np.asarray(texture, dtype=np.uint8)).save(texture_path)
        reader = UsdShade.Shader.Define(stage, "/Head/Looks/Head/StReader")
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
        image = UsdShade.Shader.Define(stage, "/Head/Looks/Head/BaseColor")
        image.CreateIdAttr("UsdUVTexture")
        image.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(f"./{texture_path.name}")
        image.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
        image.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
        image.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
        surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(image.ConnectableAPI(), "rgb")
    elif model.colors is not None:
        reader = UsdShade.Shader.Define(stage, "/Head/Looks/Head/ColorReader")
        reader.CreateIdAttr("UsdPrimvarReader_float3")
        reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("displayColor")
        reader.CreateOutput("result", Sdf.ValueTypeNames.Float3)
        surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(
            reader.ConnectableAPI(), "result"
        )
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
    stage.GetRootLayer().Save()
    del stage
    partial.replace(path)


def read_usd_blendshapes(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(points [V, 3], names [K], dense offsets [K, V, 3]) of a file written by `write_head_usd`."""
    _, _, Usd, UsdGeom, _, UsdSkel, _ = _pxr()
    stage = Usd.Stage.Open(str(path))
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/Head/Mesh"))
    points = np.asarray(mesh.GetPointsAttr().Get(), dtype=np.float32)
    binding = UsdSkel.BindingAPI(mesh.GetPrim())
    names = [str(name) for name in binding.GetBlendShapesAttr().Get()]
    offsets = np.zeros((len(names), len(points), 3), dtype=np.float32)
    for index, target in enumerate(binding.GetBlendShapeTargetsRel().GetTargets()):
        blend = UsdSkel.BlendShape(stage.GetPrimAtPath(target))
        indices = np.asarray(blend.GetPointIndicesAttr().Get(), dtype=np.int64)
        offsets[index, indices] = np.asarray(blend.GetOffsetsAttr().Get(), dtype=np.float32)
    return points, names, offsets
