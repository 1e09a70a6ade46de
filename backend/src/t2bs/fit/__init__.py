"""The fit (DESIGN.md stage 4) and registration (stage 5): view-conditioned deformable Gaussians.

Modules: `scaffold` builds the static Gaussians, control points and skinning from the mesh; `model` holds
the deformation and colour-refine networks; `losses` the image and geometry terms; `trainer` the
optimisation loop; `presets` the sizes per preset.
"""
