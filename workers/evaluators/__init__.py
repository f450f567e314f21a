"""workers/evaluators."""
