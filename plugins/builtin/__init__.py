"""The built-in step plugins, written with the same SDK as third-party ones.

`finance-co-review` (财务联审), `webhook`, `notify` and `auto-decide`; the registry loads them
as entry points of the group `formflow.steps` (`plugins.registry.BUILTINS`).
"""
