"""Executors run evaluation tasks: :class:`InlineExecutor` in-process, :class:`RayExecutor` on Ray."""

from workers.executors.base import Executor, ExecutorConfig, ExecutorError
from workers.executors.inline import InlineExecutor


def make_executor(kind: str, config: ExecutorConfig, address: str | None = None) -> Executor:
    """An executor by name: ``inline`` or ``ray`` (``address``: an existing cluster)."""
    if kind == "inline":
        return InlineExecutor(config)
    if kind == "ray":
        from workers.executors.ray_executor import RayExecutor

        return RayExecutor(config, address=address)
    raise ExecutorError(f"unknown executor {kind!r}: use ray or inline")


__all__ = ["Executor", "ExecutorConfig", "ExecutorError", "InlineExecutor", "make_executor"]
