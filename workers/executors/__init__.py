"""Executors run evaluation tasks: :class:`InlineExecutor` in-process, :class:`RayExecutor` on Ray."""

from workers.executors.base import Executor, ExecutorConfig
from workers.executors.inline import InlineExecutor


def make_executor(kind: str, config: ExecutorConfig, address: str | None = None) -> Executor:
    """An executor by name: ``inline`` or ``ray`` (``address``: an existing cluster)."""
    if kind == "inline":
        return InlineExecutor(config)
    if kind == "ray":
        from workers.executors.ray_executor import RayExecutor

        return RayExecutor(config, address=address)
    raise ValueError(f"unknown executor {kind!r}: use ray or inline")


__all__ = ["Executor", "ExecutorConfig", "InlineExecutor", "make_executor"]
