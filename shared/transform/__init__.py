"""The transformation step: a job's optional ``transform`` SQL over ``@resultN``, run on DuckDB."""
from shared.transform.engine import TransformLimits
from shared.transform.plan import TransformError, TransformPlan, normalise, plan_transform, transform_problems
from shared.transform.run import Transformation, extraction_for

__all__ = ["TransformError", "TransformLimits", "TransformPlan", "Transformation", "extraction_for", "normalise", "plan_transform",
           "transform_problems"]
