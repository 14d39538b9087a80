"""The pure core: parsing, validation, normalization, DAG ordering and plans.

Nothing in this package does IO; it takes values and returns values.
"""
