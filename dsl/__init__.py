"""The rules language: YAML loading, the Lark grammar, the compiler and the evaluator.

Kept free of imports here so the workflow sandbox can import ``dsl.ir`` and
``dsl.evaluator`` without pulling in YAML or Lark.
"""
