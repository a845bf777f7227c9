"""The masque file: loader (line/col), schema, semantics, validation, registry, intent policy, extends/inheritance,
rollout stages and trusted definitions."""
