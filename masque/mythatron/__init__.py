"""MythaTron mask SDK: the mask JSON dialect, inheritance, scaffolding, tests, blending, routing,
staged rollouts and generation. See the README (MythaTron).

Submodules are imported on demand; importing this package costs nothing.
"""
