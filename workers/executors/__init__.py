"""Executors run evaluation tasks: :class:`InlineExecutor` in-process, :class:`RayExecutor` on Ray."""

from workers.executors.base import Executor, ExecutorConfig, ExecutorError
from workers.executors.inline import InlineExecutor


def make_executor(kind: str, config: ExecutorConfig, address: str | None = None) -> Executor:
    """An executor by name: ``inline`` or ``ray`` (``address``: an existing cluster).
    ``config.whole_batches`` (``search.reproducible``) is the inline executor's alone: Ray's
    results come back in the order its workers finish them, which no setting makes the same."""
    if config.whole_batches and kind == "ray":
        raise ExecutorError("search.reproducible: true needs the inline executor (Ray's results come back in the "
                            "order its workers finish them, so two Ray runs part where that order differs); run "
                            "with the inline executor, or set it false")
    if kind == "inline":
        return InlineExecutor(config)
    if kind == "ray":
        from workers.executors.ray_executor import RayExecutor

        return RayExecutor(config, address=address)
    raise ExecutorError(f"unknown executor {kind!r}: use ray or inline")


__all__ = ["Executor", "ExecutorConfig", "ExecutorError", "InlineExecutor", "make_executor"]
