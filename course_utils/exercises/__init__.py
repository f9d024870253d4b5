"""Exercise checkers, one module per lesson, named after the lesson's slug (l03_models_and_heads).

Each module holds only that lesson's checkers, its explorers and their data; helpers a lesson
teaches live in modules named for what they do.
"""
