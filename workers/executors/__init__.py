"""Executors run evaluation tasks: :class:`InlineExecutor` in-process, :class:`RayExecutor` on Ray."""

from workers.executors.base import Executor, ExecutorConfig, ExecutorError
from workers.executors.inline import InlineExecutor
from workers.executors.ordered import OrderedBatches


def make_executor(kind: str, config: ExecutorConfig, address: str | None = None) -> Executor:
    """An executor by name: ``inline`` or ``ray`` (``address``: an existing cluster).
    ``config.whole_batches`` (``search.reproducible``): the inline executor runs one batch a
    poll itself; Ray's results, which come back in the order its workers finish them, are
    handed back a whole batch a poll in submit order (:class:`~workers.executors.ordered.OrderedBatches`)."""
    if kind == "inline":
        return InlineExecutor(config)
    if kind == "ray":
        from workers.executors.ray_executor import RayExecutor

        ray_executor = RayExecutor(config, address=address)
        return OrderedBatches(ray_executor) if config.whole_batches else ray_executor
    raise ExecutorError(f"unknown executor {kind!r}: use ray or inline")


__all__ = ["Executor", "ExecutorConfig", "ExecutorError", "InlineExecutor", "make_executor"]
