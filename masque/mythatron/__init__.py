"""MythaTron mask SDK: scaffolding, the mask test runner and its assertions, blending, routing, providers
and generation. See docs/mythatron.md. The mask JSON dialect, `extends` and rollout stages are
masque-file concepts and live in `masque.masques`; the `mythatron` command is `masque.cli.mythatron`.

Submodules are imported on demand; importing this package costs nothing.
"""
